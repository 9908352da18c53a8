"""Strict structured outputs: the request's schema in OpenAI's strict subset, the answer back.

instructor 1.17 sends neither ``"strict": true`` (``TOOLS_STRICT`` is folded into
``TOOLS``) nor a schema the strict subset accepts (``JSON_SCHEMA`` omits it as
well); both were captured on a loopback server. ``apply_strict`` rewrites the
request instructor built, just before it is sent:

- ``tools[*].function`` and ``response_format.json_schema`` get ``strict: true``
  and ``strict_schema(...)`` of their schema;
- ``strict_schema`` lists every property in ``required``, gives every object
  ``additionalProperties: false``, makes an optional value a union with null
  (an optional list stays a list: the model sends ``[]``), inlines a ``$ref``
  that carries other keywords, and keeps only the keywords in ``KEYWORDS``
  (the subset documented for OpenAI and Azure alike; length, count and range
  limits, ``default``, ``title`` and ``format`` are dropped). A map (a dict
  field: ``additionalProperties`` holding a schema) has no strict form and is
  left as it is, so the API refuses it with its own message instead of the
  model being held to ``{}``.

Nothing is lost: pydantic still validates the answer with the full model
(normalisers, limits, evidence rules). Before it does, ``drop_added_nulls`` removes
the ``null`` a strict answer must carry for a property the full model may omit but
does not accept as ``null``, so the model's default applies as it would have.

Documentation: https://platform.openai.com/docs/guides/structured-outputs#supported-schemas
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

# Keywords kept in a strict schema. Structural ones, plus description (part of the
# prompt). Everything else is dropped; the full pydantic model still enforces it.
KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "anyOf",
        "enum",
        "const",
        "$ref",
        "$defs",
        "description",
    }
)


def _admits_null(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    if "enum" in node and None in node["enum"]:
        return True
    return any(_admits_null(n) for n in node.get("anyOf", []) if isinstance(n, dict))


def _nullable(node: dict[str, Any]) -> dict[str, Any]:
    """``node`` as a union with null (already strict-transformed)."""
    if _admits_null(node) or not node:
        return node
    if "anyOf" in node:
        return {**node, "anyOf": [*node["anyOf"], {"type": "null"}]}
    if "$ref" in node:
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return {"anyOf": [{"$ref": node["$ref"]}, {"type": "null"}], **rest}
    kind = node.get("type")
    if isinstance(kind, str):
        out = {**node, "type": [kind, "null"]}
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        return out
    return {"anyOf": [node, {"type": "null"}]}


class _Transformer:
    def __init__(self, root: dict[str, Any]) -> None:
        self.defs = root.get("$defs", {})
        self._inlining: list[str] = []

    def node(self, node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        if "$ref" in node and len(node) > 1:
            node = self._inline(node)
        out = {k: v for k, v in node.items() if k in KEYWORDS and k != "$defs"}
        if "anyOf" in out:
            out["anyOf"] = [self.node(n) for n in out["anyOf"]]
        if "items" in out:
            out["items"] = self.node(out["items"])
        if out.get("type") == "object" or "properties" in out:
            props = node.get("properties", {})
            was_required = set(node.get("required", []))
            new_props = {}
            for name, prop in props.items():
                strict_prop = self.node(prop)
                optional_list = prop.get("type") == "array"  # its default is a list too
                if name not in was_required and not optional_list:
                    strict_prop = _nullable(strict_prop)
                new_props[name] = strict_prop
            out["type"] = "object"
            out["properties"] = new_props
            out["required"] = list(new_props)
            # a map (additionalProperties: a schema) has no strict form: left for the
            # server to refuse clearly, rather than silently allowing only {}
            if node.get("additionalProperties") in (None, False):
                out["additionalProperties"] = False
        return out

    def _inline(self, node: dict[str, Any]) -> dict[str, Any]:
        ref = node["$ref"]
        name = ref.rsplit("/", 1)[-1]
        target = self.defs.get(name)
        if target is None or name in self._inlining:  # unknown or recursive: keep the ref
            return {"$ref": ref}
        self._inlining.append(name)
        try:
            merged = {**self.node(target), **{k: v for k, v in node.items() if k != "$ref"}}
        finally:
            self._inlining.pop()
        return merged


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (a pydantic JSON schema with ``$defs``) in the strict subset."""
    return json.loads(_strict_json(json.dumps(schema, sort_keys=False)))


@lru_cache(maxsize=64)
def _strict_json(text: str) -> str:
    root = json.loads(text)
    t = _Transformer(root)
    out = t.node(root)
    if root.get("$defs"):
        out["$defs"] = {name: t.node(d) for name, d in root["$defs"].items()}
    return json.dumps(out)


# ------------------------------------------------------------------ the answer


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while "$ref" in node and seen < 32:
        target = defs.get(node["$ref"].rsplit("/", 1)[-1], {})
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        seen += 1
    return node


def drop_added_nulls(data: Any, schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """``data`` without the nulls strict mode forced where ``schema`` (the full
    model's) neither requires the property nor accepts null. Changes ``data`` in place."""
    defs = schema.get("$defs", {}) if defs is None else defs
    node = _resolve(schema, defs)
    if isinstance(data, dict):
        required = set(node.get("required", []))
        for name, prop in node.get("properties", {}).items():
            if name not in data:
                continue
            sub = _resolve(prop, defs)
            if data[name] is None and name not in required and not _admits_null_deep(sub, defs):
                del data[name]
            else:
                drop_added_nulls(data[name], sub, defs)
        for alt in node.get("anyOf", []):
            alt = _resolve(alt, defs)
            if alt.get("type") == "object" or "properties" in alt:
                drop_added_nulls(data, alt, defs)
                break
    elif isinstance(data, list):
        items = node.get("items")
        if items is None:
            alt = next(
                (_resolve(a, defs) for a in node.get("anyOf", []) if "items" in _resolve(a, defs)),
                None,
            )
            items = alt.get("items") if alt else None
        if isinstance(items, dict):
            for item in data:
                drop_added_nulls(item, items, defs)
    return data


def _admits_null_deep(node: dict[str, Any], defs: dict[str, Any]) -> bool:
    node = _resolve(node, defs)
    if _admits_null(node):
        return True
    return any(_admits_null_deep(a, defs) for a in node.get("anyOf", []) if isinstance(a, dict))


def apply_strict(kwargs: dict[str, Any]) -> tuple[dict[str, Any], Callable[[Any], bool]]:
    """The request with strict structured outputs, and a function that restores one
    answer message to what the full model expects (True when it changed anything)."""
    kwargs = dict(kwargs)
    originals: dict[str, dict[str, Any]] = {}
    tools = kwargs.get("tools")
    if tools:
        new_tools = []
        for tool in tools:
            tool = copy.deepcopy(tool)
            fn = tool.get("function") or {}
            params = fn.get("parameters")
            if isinstance(params, dict):
                originals[fn.get("name", "")] = params
                fn["parameters"] = strict_schema(params)
                fn["strict"] = True
            new_tools.append(tool)
        kwargs["tools"] = new_tools
    fmt = kwargs.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        fmt = copy.deepcopy(fmt)
        spec = fmt.setdefault("json_schema", {})
        if isinstance(spec.get("schema"), dict):
            originals[""] = spec["schema"]
            spec["schema"] = strict_schema(spec["schema"])
        spec["strict"] = True
        kwargs["response_format"] = fmt

    def restore(message: Any) -> bool:
        changed = False
        for call in getattr(message, "tool_calls", None) or []:
            fn = getattr(call, "function", None)
            schema = originals.get(getattr(fn, "name", ""))
            if schema is not None and isinstance(fn.arguments, str):
                fixed = restore_text(fn.arguments, schema)
                changed |= fixed != fn.arguments
                fn.arguments = fixed
        content = getattr(message, "content", None)
        if "" in originals and isinstance(content, str):
            fixed = restore_text(content, originals[""])
            changed |= fixed != content
            message.content = fixed
        return changed

    return kwargs, restore


def restore_text(text: str, schema: dict[str, Any]) -> str:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text  # left for the validator to report (and re-ask)
    before = json.dumps(data)
    drop_added_nulls(data, schema)
    after = json.dumps(data)
    return text if after == before else after

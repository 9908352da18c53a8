"""A compact, readable description of a response model's JSON Schema, for the prompt.

Some OpenAI-compatible servers turn the tool's schema into a grammar but never show
the tool definition to the model (llama.cpp's server with a chat template that has
no tool section, such as Gemma 3's): the model then fills fields whose meaning it
was never told. ``describe`` renders the same schema the tool carries — field
names, types, enums and descriptions, nested objects indented — in a few lines of
text, to put in the prompt where a server does not render tools (opt-in:
``--schema-in-prompt``). It walks ``model_json_schema()``, so fields hidden from the
model (``SkipJsonSchema``) stay hidden here too.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

EVIDENCE = "evidence"


def describe(model: type[BaseModel]) -> str:
    """The schema as an indented outline, headed by how evidence works."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    lines = [
        f"Fill {model.__name__} with these fields (leave out what the report does not state).",
        f"Every object also takes `{EVIDENCE}`: a list of short quotes copied exactly "
        "from the report.",
    ]
    lines += _properties(schema, defs, 0)
    return "\n".join(lines)


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref:
        return {**defs[ref.rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
    options = [o for o in node.get("anyOf", []) if o.get("type") != "null"]
    if len(options) == 1:
        merged = {**_resolve(options[0], defs), **{k: v for k, v in node.items() if k != "anyOf"}}
        return merged
    return node


def _type(node: dict[str, Any], defs: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """A short type label, and the object schema to describe beneath it (if any)."""
    node = _resolve(node, defs)
    if "enum" in node:
        return "one of " + " | ".join(str(v) for v in node["enum"]), None
    kind = node.get("type")
    if kind == "array":
        label, inner = _type(node.get("items", {}), defs)
        return ("list of objects" if inner else f"list of {label}"), inner
    if kind == "object" or "properties" in node:
        return "object", node
    return {
        "string": "text",
        "number": "number",
        "integer": "integer",
        "boolean": "true/false",
    }.get(str(kind), str(kind or "any")), None


def _properties(node: dict[str, Any], defs: dict[str, Any], depth: int) -> list[str]:
    lines = []
    pad = "  " * depth
    for name, prop in node.get("properties", {}).items():
        if name == EVIDENCE:
            continue
        label, inner = _type(prop, defs)
        description = _resolve(prop, defs).get("description") or prop.get("description")
        line = f"{pad}- {name}: {label}"
        if description:
            line += f" — {description.strip()}"
        lines.append(line)
        if inner is not None and depth < 4:
            lines += _properties(inner, defs, depth + 1)
    return lines

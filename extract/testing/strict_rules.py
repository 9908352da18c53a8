"""The strict structured-outputs subset as OpenAI documents it, checked like the API does.

``check_strict_schema(schema)`` returns the first reason the API would refuse a
schema sent with ``strict: true`` (on a function tool, ``response_format`` or the
Responses ``text.format``), or ``None``. Every rule cites
https://platform.openai.com/docs/guides/structured-outputs#supported-schemas
(the keyword list, closed objects, every property required) and its section
"Objects have limitations on nesting depth and size" (the five limits below).
Used by ``ConformanceServer`` and by tests on their own.
"""

from __future__ import annotations

from typing import Any

DOCS_STRICT = "https://platform.openai.com/docs/guides/structured-outputs#supported-schemas"

# DOCS_STRICT, "Supported schemas" / "Supported properties": the keywords a strict
# schema may use; anything else is refused with "'<keyword>' is not permitted".
STRICT_KEYWORDS = frozenset(
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
        "definitions",
        "description",
        "title",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minItems",
        "maxItems",
    }
)
# DOCS_STRICT, "Objects have limitations on nesting depth and size":
STRICT_MAX_PROPERTIES = 5000  # object properties in all
STRICT_MAX_DEPTH = 10  # levels of nesting
STRICT_MAX_STRING_LENGTH = 120_000  # characters of property names, definition names, enums, consts
STRICT_MAX_ENUM_VALUES = 1000  # enum values across all enum properties
STRICT_LARGE_ENUM = 250  # a single string enum with more values than this …
STRICT_LARGE_ENUM_LENGTH = 15_000  # … may hold at most this many characters in all


class _Tally:
    def __init__(self) -> None:
        self.properties = 0
        self.chars = 0
        self.enum_values = 0


def check_strict_schema(schema: Any) -> str | None:
    """The first reason the strict subset refuses ``schema`` (as the API words it), or None."""
    if not isinstance(schema, dict) or schema.get("type") != "object" or "anyOf" in schema:
        # DOCS_STRICT: the root is an object schema, never a union
        got = schema.get("type") if isinstance(schema, dict) else None
        return f"schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{got}\"'."
    tally = _Tally()
    if found := _check_node(schema, (), 0, tally):
        return found
    if tally.chars > STRICT_MAX_STRING_LENGTH:
        # DOCS_STRICT: total string length of names, definition names, enum and const values
        return (
            f"the total string length of property names, definition names, enum values and "
            f"const values ({tally.chars:,}) exceeds the limit of {STRICT_MAX_STRING_LENGTH:,}."
        )
    if tally.enum_values > STRICT_MAX_ENUM_VALUES:
        # DOCS_STRICT: enum values across all enum properties
        return (
            f"the schema has {tally.enum_values:,} enum values, more than the limit of "
            f"{STRICT_MAX_ENUM_VALUES:,}."
        )
    return None


def _check_enum(node: dict[str, Any], where: str, tally: _Tally) -> str | None:
    values = node.get("enum")
    if not isinstance(values, list):
        return None
    tally.enum_values += len(values)
    strings = [v for v in values if isinstance(v, str)]
    tally.chars += sum(len(v) for v in strings)
    length = sum(len(v) for v in strings)
    if len(values) > STRICT_LARGE_ENUM and length > STRICT_LARGE_ENUM_LENGTH:
        # DOCS_STRICT: a single enum of more than 250 string values: 15,000 characters at most
        return (
            f"{where}an enum with {len(values)} values has {length:,} characters of values, "
            f"more than the limit of {STRICT_LARGE_ENUM_LENGTH:,} for an enum of more than "
            f"{STRICT_LARGE_ENUM} values."
        )
    return None


def _check_node(node: Any, ctx: tuple[str, ...], depth: int, tally: _Tally) -> str | None:
    if not isinstance(node, dict):
        return None
    where = f"In context={ctx!r}, "
    for key in node:
        # DOCS_STRICT: unsupported keywords
        if key not in STRICT_KEYWORDS:
            return f"{where}'{key}' is not permitted."
    # DOCS_STRICT: up to 10 levels of nesting
    if depth > STRICT_MAX_DEPTH:
        return f"{where}schema nesting exceeds {STRICT_MAX_DEPTH} levels."
    if found := _check_enum(node, where, tally):
        return found
    if isinstance(node.get("const"), str):
        tally.chars += len(node["const"])
    if node.get("type") == "object" or "properties" in node:
        props = node.get("properties", {})
        tally.properties += len(props)
        tally.chars += sum(len(name) for name in props)
        # DOCS_STRICT: up to 5,000 object properties in all
        if tally.properties > STRICT_MAX_PROPERTIES:
            return f"{where}more than {STRICT_MAX_PROPERTIES} properties."
        # DOCS_STRICT: every object closes itself with additionalProperties false
        if node.get("additionalProperties") is not False:
            return f"{where}'additionalProperties' is required to be supplied and to be false."
        # DOCS_STRICT: every property is listed in required (optional = union with null)
        missing = [name for name in props if name not in (node.get("required") or [])]
        if missing:
            return (
                f"{where}'required' is required to be supplied and to be an array including "
                f"every key in properties. Missing '{missing[0]}'."
            )
        for name, prop in props.items():
            if found := _check_node(prop, (*ctx, "properties", name), depth + 1, tally):
                return found
    if "items" in node and (found := _check_node(node["items"], (*ctx, "items"), depth + 1, tally)):
        return found
    for i, alt in enumerate(node.get("anyOf", [])):
        if found := _check_node(alt, (*ctx, "anyOf", str(i)), depth, tally):
            return found
    for name, sub in (node.get("$defs") or {}).items():
        tally.chars += len(name)
        if found := _check_node(sub, (*ctx, "$defs", name), 0, tally):
            return found
    return None

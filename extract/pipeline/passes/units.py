"""What a multi-pass extraction asks for, built from the task's response model.

Nothing here knows the case-report schema. ``Shape.of(model)`` reads the model:

* the **unit list** — the first field that is a list of objects carrying a
  ``label`` and no ``evidence`` of their own (``CaseReport.patients``); each
  entry is filled by its own pass;
* **plan fields** — the other fields that are not lists of objects
  (``article``): filled by the plan pass, with the roster of units;
* **document fields** — the other lists of objects (``figures``), filled by a
  pass of their own over the whole report.

A model without a unit list (``CementLeakage``) has no plan pass: all its fields
are document fields, split into groups of families when an answer is too long.

Response models are built with ``pydantic.create_model`` from the task model's
own field definitions (descriptions, validators, defaults), once per field set.
A ``Unit`` names one pass: its kind, the fields it fills, which roster entry,
and which range of the document it reads.
"""

from __future__ import annotations

import copy
import re
import typing
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints, create_model

Quote = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
LABEL = "label"


def _list_item(annotation: Any) -> type[BaseModel] | None:
    """``X`` when ``annotation`` is ``list[X]`` (optionally ``| None``) of a pydantic model."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        items = [_list_item(a) for a in typing.get_args(annotation) if a is not type(None)]
        return items[0] if len(items) == 1 else None
    if origin is list:
        (arg,) = typing.get_args(annotation) or (None,)
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


@dataclass(frozen=True)
class Shape:
    model: type[BaseModel]
    unit_field: str | None
    item_model: type[BaseModel] | None
    plan_fields: tuple[str, ...]
    document_fields: tuple[str, ...]
    item_fields: tuple[str, ...]

    @classmethod
    def of(cls, model: type[BaseModel]) -> Shape:
        return _shape(model)

    @property
    def item_name(self) -> str:
        return self.item_model.__name__ if self.item_model else ""

    def plan_model(self, fields: tuple[str, ...] | None = None) -> type[BaseModel]:
        return _plan_model(self, fields or (*self.plan_fields, self.unit_field or ""))

    def unit_model(self, unit: Unit) -> type[BaseModel]:
        if unit.kind == "plan":
            return self.plan_model(unit.fields)
        base = self.item_model if unit.kind == "item" else self.model
        assert base is not None
        return subset_model(base, unit.fields)


@cache
def _shape(model: type[BaseModel]) -> Shape:
    unit_field = item_model = None
    for name, info in model.model_fields.items():
        item = _list_item(info.annotation)
        if item is not None and LABEL in item.model_fields and "evidence" not in item.model_fields:
            unit_field, item_model = name, item
            break
    lists = [n for n, i in model.model_fields.items() if _list_item(i.annotation) is not None]
    if unit_field is None:
        return Shape(model, None, None, (), tuple(model.model_fields), ())
    plan = tuple(n for n in model.model_fields if n not in lists)
    document = tuple(n for n in lists if n != unit_field)
    assert item_model is not None
    items = tuple(n for n in item_model.model_fields if n != LABEL)
    return Shape(model, unit_field, item_model, plan, document, items)


def _tool_name(*parts: str) -> str:
    """A function name OpenAI accepts: a-z, A-Z, 0-9, underscores and dashes, at most 64
    (https://platform.openai.com/docs/api-reference/chat/create, ``tools[].function.name``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", "_".join(p for p in parts if p))[:64]


def _fields(model: type[BaseModel], names: tuple[str, ...]) -> dict[str, Any]:
    """Field definitions of ``model``; a required one becomes optional (``None``), since
    one pass may read a part of the report that does not state it."""
    out: dict[str, Any] = {}
    for name in names:
        info = model.model_fields[name]
        annotation: Any = info.annotation
        if info.is_required():
            info = copy.copy(info)
            info.default = None
            annotation = annotation | None
        out[name] = (annotation, info)
    return out


@cache
def subset_model(base: type[BaseModel], fields: tuple[str, ...]) -> type[BaseModel]:
    """``base`` restricted to ``fields`` (all of them but the label: the base's own name)."""
    all_fields = tuple(n for n in base.model_fields if n != LABEL)
    name = base.__name__ if fields == all_fields else _tool_name(base.__name__, *fields)
    return create_model(
        name, __config__=base.model_config, __doc__=base.__doc__, **_fields(base, fields)
    )


@cache
def _plan_model(shape: Shape, fields: tuple[str, ...]) -> type[BaseModel]:
    spec = _fields(shape.model, tuple(f for f in fields if f in shape.plan_fields))
    if shape.unit_field and shape.unit_field in fields and shape.item_model is not None:
        label = shape.item_model.model_fields[LABEL]
        entry = create_model(
            f"{shape.item_name}Entry",
            __config__=shape.item_model.model_config,
            label=(str, Field(description=label.description)),
            evidence=(
                list[Quote],
                Field(
                    min_length=1,
                    description="Verbatim quote(s) where the report describes this one: the "
                    "sentence that introduces it, and one more for each later place "
                    "(e.g. a summary table) that describes it again.",
                ),
            ),
        )
        spec[shape.unit_field] = (
            list[entry],  # type: ignore[valid-type]
            Field(description=f"Every {shape.item_name.lower()} the report presents, in order."),
        )
    complete = set(fields) == {*shape.plan_fields, shape.unit_field}
    name = f"{shape.model.__name__}Plan" if complete else _tool_name(shape.model.__name__, *fields)
    return create_model(name, __config__=shape.model.model_config, **spec)


@dataclass(frozen=True)
class Unit:
    """One pass: ``kind`` plan / item / document, the fields it fills, the roster
    entry (``item``, ``label``) and the document range it reads (``None`` = all)."""

    kind: str
    fields: tuple[str, ...]
    item: int | None = None
    label: str | None = None
    chunk: tuple[int, int] | None = None

    @property
    def key(self) -> str:
        who = self.kind if self.item is None else f"{self.kind}[{self.item}]"
        what = f":{'+'.join(self.fields)}" if self.fields else ""
        where = "" if self.chunk is None else f"@{self.chunk[0]}-{self.chunk[1]}"
        return f"{who}{what}{where}"

    def split_fields(self) -> list[Unit] | None:
        if len(self.fields) < 2:
            return None
        half = (len(self.fields) + 1) // 2
        return [self._with(fields=self.fields[:half]), self._with(fields=self.fields[half:])]

    def with_chunk(self, chunk: tuple[int, int]) -> Unit:
        return self._with(chunk=chunk)

    def _with(self, **changes: Any) -> Unit:
        data = {**self.__dict__, **changes}
        return Unit(**data)

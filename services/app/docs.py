"""docs/CONFIG.md and docs/MQTT.md, generated from the code (a test fails when they drift)."""

from __future__ import annotations

import json
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from services.app.registry import SERVICES, load
from services.app.root_config import root_model
from services.core.contract import table as contract_table
from services.core.fields import FieldSpec


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _annotated_name(annotation)
    if origin is None:
        if annotation is Ellipsis:
            return "..."
        return getattr(annotation, "__name__", str(annotation)).replace("NoneType", "null")
    args = " | ".join(_type_name(a) for a in get_args(annotation))
    if str(origin) == "typing.Literal":
        return " | ".join(json.dumps(a) for a in get_args(annotation))
    name = getattr(origin, "__name__", str(origin)).replace("UnionType", "")
    if name == "tuple" and args.endswith(" | ..."):
        return f"list[{args[:-6]}]"  # tuple[X, ...]: a list in YAML
    return args if name in ("", "Union") else f"{name}[{args}]"


def _annotated_name(annotation: Any) -> str:
    """A value type with its own parser (a duration, a clock time): its schema title says
    what to write; else the type it annotates."""
    inner, *meta = get_args(annotation)
    return _schema_title(meta) or _type_name(inner)


def _schema_title(metadata: list[Any]) -> str | None:
    for item in metadata:
        schema = getattr(item, "json_schema", None)
        if isinstance(schema, dict) and isinstance(schema.get("title"), str):
            return str(schema["title"])
    return None


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return "(required)"
    else:
        value = info.default
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    if hasattr(value, "get_secret_value"):
        return "(secret)"
    text = json.dumps(value, default=str, ensure_ascii=False)
    return f"`{text}`" if len(text) < 60 else f"`{text[:57]}...`"


def _model_rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows = []
    for name, info in model.model_fields.items():
        key = f"{prefix}.{info.alias or name}"  # ``in_`` is written ``in``
        annotation = info.annotation
        nested = _nested(annotation)
        doc = (info.description or "").replace("|", "\\|").replace("\n", " ")
        if nested is not None and get_origin(annotation) is None:
            rows += _model_rows(nested, key)
            continue
        # pydantic keeps a field's own Annotated metadata apart from its annotation
        kind = (_schema_title(info.metadata) or _type_name(annotation)).replace("|", "\\|")
        rows.append(f"| `{key}` | {kind} | {_default(info)} | {doc} |")
        if nested is not None:
            rows += _model_rows(nested, f"{key}[]")
    return rows


def _nested(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def config_markdown() -> str:
    """Every configuration key, by section, from the pydantic models."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from the pydantic models by `enerbox config docs` (a test fails when this",
        "file and the code disagree). One YAML file (`ENERBOX_CONFIG`, default",
        "`config/enerbox.yaml`); any key can be set from the environment as",
        "`ENERBOX_<SECTION>__<KEY>` (nested: `ENERBOX_HISTORIAN__INFLUXDB__URL`). A key typed",
        "as a list or an object takes JSON; any other value is taken as written (a password",
        "may start with `[`). `enerbox config check` also checks the references between",
        "sections (shedding loads and meter, relays sharing a board output) and warns about",
        "serial ports not plugged in yet. Errors never show a secret's value.",
        "",
    ]
    for section, info in root_model().model_fields.items():
        model = _nested(info.annotation)
        if model is None:
            continue
        lines += [f"## `{section}`", "", (model.__doc__ or "").strip(), "",
                  "| key | type | default | description |", "|---|---|---|---|",
                  *_model_rows(model, section), ""]
    return "\n".join(lines)


def _field_rows(specs: tuple[FieldSpec, ...]) -> list[str]:
    rows = ["| field | unit | Home Assistant | description |", "|---|---|---|---|"]
    for spec in specs:
        ha = "—" if not spec.discover else " ".join(
            x for x in (spec.component, spec.device_class, spec.state_class) if x)
        desc = spec.description.replace("|", "\\|") or spec.name
        rows.append(f"| `{spec.key}` | {spec.unit or ''} | {ha} | {desc} |")
    return rows


MQTT_INTRO = """# MQTT topics and fields

Generated by `enerbox config docs --mqtt` from the services' field tables (a test fails when
this file and the code disagree). `<p>` is the prefix (`mqtt.prefix`, default `enerbox`).
"""

def topic_table() -> str:
    """The Markdown table of every topic, from the contract (services/core/contract)."""
    return contract_table.topic_table()


def event_list() -> str:
    """Every event type, from the contract."""
    return contract_table.event_list()


def mqtt_markdown() -> str:
    """Topics, and every device service's fields."""
    lines = [MQTT_INTRO + "\n" + topic_table() + "\n" + event_list()]
    for name, entry in SERVICES.items():
        if entry.fields is None:
            continue
        specs: tuple[FieldSpec, ...] = load(entry.fields)
        lines += [f"## {name} fields", "", entry.description + ".", "", *_field_rows(specs), ""]
    return "\n".join(lines)

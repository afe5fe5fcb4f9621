"""Settings: one YAML file, ENERBOX_<SECTION>__<KEY> overrides, secrets from env or files.

Each section is a pydantic model (the schema is the documentation: descriptions, defaults,
units in key names). This module has the shared sections and the machinery, for any root
model: the composition root (services/app/root_config.py) assembles the sections of every
service and hands each service a ``Settings`` of its own section plus the shared ones.

An invalid configuration raises ConfigError listing every problem by key, with the value
found (never a secret's) and what was expected; services print it and stop instead of
starting half-configured.
"""

from __future__ import annotations

import json
import os
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar, Union, get_args, get_origin
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from services.core.contract.topics import check_prefix

ENV_PREFIX = "ENERBOX_"
DEFAULT_CONFIG = Path("config/enerbox.yaml")
HIDDEN = "'***'"  # what an error report shows instead of a secret's value
# A key whose name holds one of these is a secret even when typed as a plain string.
SECRET_WORDS = ("password", "token", "key", "secret")

M = TypeVar("M", bound=BaseModel)
S_co = TypeVar("S_co", covariant=True)


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` has one line per bad key."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))

    def report(self) -> str:
        """Human-readable, one problem per line."""
        lines = [f"invalid configuration ({self.source}):"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def read_secret(value: SecretStr | None, path: Path | None, what: str) -> SecretStr | None:
    """A secret given inline (env) or as a file path (Docker/systemd credentials)."""
    if value is not None or path is None:
        return value
    try:
        return SecretStr(path.read_text(encoding="utf-8").strip())
    except OSError as exc:
        raise ValueError(f"cannot read {what} from {path}: {exc.strerror}") from exc


def check_time_zone(value: str) -> str:
    """A field validator: an IANA zone name zoneinfo knows (Europe/Paris)."""
    try:
        ZoneInfo(value)
    except (ValueError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"unknown time zone {value!r} (e.g. Europe/Paris)") from exc
    return value


class MqttConfig(Section):
    """Connection to the MQTT broker (mosquitto)."""

    host: str = Field("127.0.0.1", description="Broker host name or address.")
    port: int = Field(1883, ge=1, le=65535, description="Broker TCP port.")
    username: str | None = Field(None, description="User name, when the broker requires one.")
    password: SecretStr | None = Field(
        None, description="Password; prefer ENERBOX_MQTT__PASSWORD or password_file."
    )
    password_file: Path | None = Field(
        None, description="File holding the password (Docker secret, systemd credential)."
    )
    prefix: str = Field(
        "enerbox", description="Topic prefix, e.g. 'enerbox' or 'enerbox/site-42' for a fleet."
    )
    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keepalive.")
    reconnect_max_s: int = Field(
        4, ge=1, le=300, description="Longest wait between reconnection attempts."
    )
    state_expiry_s: int = Field(
        300,
        ge=0,
        description="Message expiry of retained state, so a dead service's state disappears "
        "(0 = never expires).",
    )
    recorder: str | None = Field(
        "historian",
        description="The service that records every state from the journal topics. A service "
        "holds its journal (in order, in memory) until this broker has seen the recorder "
        "subscribe (its retained status), so a restarted broker that lost the recorder's "
        "session loses no reading. Empty when no historian runs.",
    )
    journal_buffer: int = Field(
        20000, ge=100, le=1_000_000,
        description="States a service holds while the broker or the recorder is away (about "
        "600 bytes each; 20000 is 5.5 hours of a Linky frame every second); past it the "
        "oldest go.",
    )

    @field_validator("prefix")
    @classmethod
    def _prefix_levels(cls, value: str) -> str:
        return check_prefix(value)

    def model_post_init(self, _context: Any) -> None:
        """Resolve the password file."""
        secret = read_secret(self.password, self.password_file, "mqtt.password")
        object.__setattr__(self, "password", secret)


class HomeAssistantConfig(Section):
    """Home Assistant MQTT discovery."""

    discovery: bool = Field(True, description="Publish device-based discovery messages.")
    discovery_prefix: str = Field("homeassistant", description="HA discovery prefix.")
    unique_id_base: str | None = Field(
        None, description="Stem of the HA unique ids and device ids (<base>_<service>_<device>)."
        " Default: the one saved in <data_dir>/homeassistant/<service>.json, made from "
        "mqtt.prefix at the first start, so a later prefix change keeps the HA entities. "
        "Setting another clears the old discovery topics: HA makes new devices.")


class GeneralConfig(Section):
    """Settings shared by every service."""

    data_dir: Path = Field(Path("data"), description="Where services keep persistent state.")
    log_level: str = Field(
        "INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$", description="Log level."
    )


@dataclass(frozen=True)
class Settings(Generic[S_co]):
    """What one service is given: the shared sections and its own ``section``.

    ``section`` is the service's pydantic section, or, for a service that reads parts of
    other sections (the api), a typed object of just those parts, built by the composition
    root: no service sees the whole configuration.
    """

    general: GeneralConfig
    mqtt: MqttConfig
    homeassistant: HomeAssistantConfig
    section: S_co


# -- reading: YAML, environment, validation ------------------------------------------------


def config_path(path: str | Path | None = None) -> Path:
    """The file to read: the argument, else $ENERBOX_CONFIG, else config/enerbox.yaml."""
    return Path(path or os.environ.get("ENERBOX_CONFIG") or DEFAULT_CONFIG)


def read_yaml(path: Path, required: bool) -> dict[str, Any]:
    """The file's top-level mapping ({} for an absent optional or empty file)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise ConfigError(str(path), ["file not found"]) from None
        return {}
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror}"]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(str(path), [f"{where}not valid YAML ({problem})"]) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), [f"expected a mapping of sections, got {type(data).__name__}"])
    return data


def _members(annotation: Any) -> tuple[Any, ...]:
    """The types of a union (``X | None``), or the annotation itself."""
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
    return None


def _is_structured(annotation: Any) -> bool:
    """A list, tuple, set, mapping or model: the env value of such a key is JSON."""
    for member in _members(annotation):
        origin = get_origin(member) or member
        if isinstance(origin, type) and (
            issubclass(origin, list | tuple | set | frozenset | dict | Mapping | BaseModel)
        ):
            return True
    return False


def field_annotation(model: type[BaseModel], path: list[str]) -> Any | None:
    """The annotation of the key at ``path`` under ``model`` (None: no such key)."""
    current: type[BaseModel] | None = model
    annotation: Any = None
    for part in path:
        if current is None or part not in current.model_fields:
            return None
        annotation = current.model_fields[part].annotation
        current = _model_of(annotation)
    return annotation


def env_overrides(env: Mapping[str, str], model: type[BaseModel]) -> dict[str, Any]:
    """ENERBOX_<SECTION>__<KEY>[__<SUBKEY>...] variables as a nested mapping.

    A value is parsed as JSON only when ``model`` types its key as a list, a tuple, a
    mapping or a model (lists of meters, ...); every other value stays the string it is
    and pydantic converts it ('1883' -> 1883, 'true' -> True), so a password starting
    with '[' is a password. Written here rather than taken from pydantic-settings, whose
    import alone costs 5 MB of RSS on a Pi Zero.
    """
    tree: dict[str, Any] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        value: Any = raw
        if _is_structured(field_annotation(model, path)):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ConfigError(name, [f"{name}: not valid JSON ({exc.msg})"]) from exc
        node = tree
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[path[-1]] = value
    return tree


def merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: ``over`` wins, mappings are merged key by key."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _env_name(loc: tuple[int | str, ...], env: Mapping[str, str]) -> str | None:
    """The ENERBOX_ variable that set this location (or a key under it), if one did."""
    for depth in range(len(loc), 0, -1):
        name = ENV_PREFIX + "__".join(str(p) for p in loc[:depth]).upper()
        if name in env:
            return name
        if depth == len(loc):
            under = sorted(n for n in env if n.upper().startswith(name + "__"))
            if under:
                return under[0]
    return None


def is_secret(model: type[BaseModel], loc: tuple[int | str, ...]) -> bool:
    """True when ``loc`` is, or is inside, a secret: a SecretStr field, or a key whose name
    says password, token, key or secret (an API key typed as a plain string is one too)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, str) and any(word in part.lower() for word in SECRET_WORDS):
            return True
        if isinstance(part, int) or current is None:
            continue
        info = current.model_fields.get(part)
        if info is None:
            current = None
            continue
        if any(m is SecretStr for m in _members(info.annotation)):
            return True
        current = _model_of(info.annotation) or _list_item_model(info.annotation)
    return False


def _list_item_model(annotation: Any) -> type[BaseModel] | None:
    for member in _members(annotation):
        for arg in get_args(member):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg
    return None


def describe(
    exc: ValidationError, env: Mapping[str, str], model: type[BaseModel]
) -> list[str]:
    """One line per pydantic error: the key, the value (``'***'`` for a secret), the reason,
    and the ENERBOX_ variable it came from."""
    known = list(model.model_fields)
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        value = err.get("input")
        if err["type"] == "extra_forbidden":
            hint = f" (known sections: {', '.join(known)})" if len(loc) == 1 else ""
            line = f"{key}: unknown key{hint}"
        else:
            msg = err["msg"].removeprefix("Value error, ")
            shown = HIDDEN if is_secret(model, loc) else repr(value)
            line = f"{key}: {msg}" if isinstance(value, dict) else f"{key} = {shown}: {msg}"
        origin = _env_name(loc, env)
        problems.append(f"{line} (from {origin})" if origin else line)
    return problems


def load_model(
    model: type[M], path: str | Path | None = None, required: bool = False,
    env: Mapping[str, str] | None = None,
) -> M:
    """Read the YAML file, apply ENERBOX_* overrides, validate against ``model``.

    ConfigError names each bad key. ``required``: a missing file is an error (it always is
    when ``path`` is given).
    """
    env = os.environ if env is None else env
    file = config_path(path)
    data = read_yaml(file, required or path is not None)
    try:
        return model.model_validate(merge(data, env_overrides(env, model)))
    except ValidationError as exc:
        raise ConfigError(str(file), describe(exc, env, model)) from None

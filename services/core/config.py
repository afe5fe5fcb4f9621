"""Settings: one YAML file, ENERBOX_<SECTION>__<KEY> overrides, secrets from env or files.

Each section is a pydantic model (the schema is the documentation: descriptions, defaults,
units in key names).

An invalid configuration raises ConfigError listing every problem by key, with the value
found and what was expected; services print it and stop instead of starting half-configured.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
)

from services.core.registry import SERVICES, load
from services.core.topics import check_prefix

ENV_PREFIX = "ENERBOX_"
DEFAULT_CONFIG = Path("config/enerbox.yaml")


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


class GeneralConfig(Section):
    """Settings shared by every service."""

    data_dir: Path = Field(Path("data"), description="Where services keep persistent state.")
    log_level: str = Field(
        "INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$", description="Log level."
    )


def _section_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {
        "general": (GeneralConfig, GeneralConfig()),
        "mqtt": (MqttConfig, MqttConfig()),
        "homeassistant": (HomeAssistantConfig, HomeAssistantConfig()),
    }
    for name, entry in SERVICES.items():
        model = load(entry.config)
        fields[name] = (model, model())
    return fields


class _Root(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """ENERBOX_<SECTION>__<KEY>[__<SUBKEY>...] variables as a nested mapping.

    Values starting with '[' or '{' are JSON (lists of meters, ...); the rest stay strings
    and pydantic converts them ('1883' -> 1883, 'true' -> True). Written here rather than
    taken from pydantic-settings, whose import alone costs 5 MB of RSS on a Pi Zero.
    """
    tree: dict[str, Any] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        value: Any = raw
        if raw.lstrip()[:1] in ("[", "{"):
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


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: ``over`` wins, mappings are merged key by key."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


_ROOT: type[_Root] | None = None


def root_model() -> type[_Root]:
    """The whole configuration's model: core sections plus one per registered service."""
    global _ROOT  # noqa: PLW0603 - built once, lazily, because it imports every service config
    if _ROOT is None:
        _ROOT = create_model("EnerboxConfig", __base__=_Root, **_section_fields())
    return _ROOT


def config_path(path: str | Path | None = None) -> Path:
    """The file to read: the argument, else $ENERBOX_CONFIG, else config/enerbox.yaml."""
    return Path(path or os.environ.get("ENERBOX_CONFIG") or DEFAULT_CONFIG)


def _read_yaml(path: Path, required: bool) -> dict[str, Any]:
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


def _describe(exc: ValidationError, env: Mapping[str, str], known: list[str]) -> list[str]:
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
            line = f"{key}: {msg}" if isinstance(value, dict) else f"{key} = {value!r}: {msg}"
        origin = _env_name(loc, env)
        problems.append(f"{line} (from {origin})" if origin else line)
    return problems


def load_config(path: str | Path | None = None, required: bool = False) -> Any:
    """Read the YAML file, apply ENERBOX_* overrides, validate; ConfigError names each bad key."""
    file = config_path(path)
    data = _read_yaml(file, required or path is not None)
    model = root_model()
    try:
        return model.model_validate(_merge(data, env_overrides(os.environ)))
    except ValidationError as exc:
        raise ConfigError(str(file), _describe(exc, os.environ, list(model.model_fields))) from None

"""The whole configuration: core's shared sections plus one section per service.

``load_config`` reads it (YAML, ENERBOX_* overrides), validates every section, then checks
the references between sections (``checks``); ``settings_for`` gives one service its typed
``Settings``: its own section, or for the api the parts of other sections it reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from services.api.config import ApiConfig, ApiInputs, DisplayRef, RelayRef
from services.app.checks import cross_reference_errors
from services.automation.config import AutomationConfig
from services.automation.loads import LoadConfig as AutomationLoad
from services.core.config import (
    ConfigError,
    GeneralConfig,
    HomeAssistantConfig,
    MqttConfig,
    Settings,
    config_path,
    load_model,
)
from services.core.history.schema import DEFAULT_FILE
from services.core.history.tariffs import TariffBook
from services.display.config import DisplaySection
from services.historian.config import HistorianConfig
from services.inverter.config import InverterConfig
from services.pulses.config import PulsesConfig
from services.relays.config import RelaysConfig
from services.shedding.config import LoadConfig as SheddingLoad
from services.shedding.config import SheddingConfig
from services.teleinfo.config import TeleinfoConfig
from services.temperature.config import TemperatureConfig
from services.vedirect.config import VedirectConfig


class EnerboxConfig(BaseModel):
    """The whole file: shared sections, then one per service (this order in the docs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    general: GeneralConfig = Field(default_factory=GeneralConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    homeassistant: HomeAssistantConfig = Field(default_factory=HomeAssistantConfig)
    teleinfo: TeleinfoConfig = Field(default_factory=TeleinfoConfig)
    vedirect: VedirectConfig = Field(default_factory=VedirectConfig)
    inverter: InverterConfig = Field(default_factory=InverterConfig)
    pulses: PulsesConfig = Field(default_factory=PulsesConfig)
    temperature: TemperatureConfig = Field(default_factory=TemperatureConfig)
    relays: RelaysConfig = Field(default_factory=RelaysConfig)
    shedding: SheddingConfig = Field(default_factory=SheddingConfig)
    historian: HistorianConfig = Field(default_factory=HistorianConfig)
    automation: AutomationConfig = Field(default_factory=AutomationConfig)
    display: DisplaySection = Field(default_factory=DisplaySection)
    api: ApiConfig = Field(default_factory=ApiConfig)


def root_model() -> type[EnerboxConfig]:
    """The whole configuration's model."""
    return EnerboxConfig


def load_config(
    path: str | Path | None = None, required: bool = False,
    env: Mapping[str, str] | None = None,
) -> EnerboxConfig:
    """Read, validate and cross-check; ConfigError names each bad key."""
    config = load_model(EnerboxConfig, path, required, env)
    errors = cross_reference_errors(config)
    if errors:
        raise ConfigError(str(config_path(path)), errors)
    return config


T = TypeVar("T")
L = TypeVar("L", AutomationLoad, SheddingLoad)


def shared(config: EnerboxConfig, section: T) -> Settings[T]:
    """A service's settings: the shared sections and ``section``."""
    return Settings(config.general, config.mqtt, config.homeassistant, section)


def history_file(config: EnerboxConfig) -> Path:
    """Where the historian keeps its SQLite file (the api and exports read it)."""
    return Path(config.historian.db_file or config.general.data_dir / DEFAULT_FILE)


def api_inputs(config: EnerboxConfig) -> ApiInputs:
    """What the api reads: its section, the relays it shows, the history it serves."""
    return ApiInputs(
        api=config.api,
        relays=tuple(RelayRef(r.id, r.name, r.kind,
                              any(load.relay == r.id for load in config.automation.loads))
                     for r in config.relays.relays),
        history_db=history_file(config),
        tariffs=TariffBook(tariffs=config.historian.tariffs),
        displays=tuple(DisplayRef(d.id, d.backend, d.size) for d in config.display.displays),
        frames_dir=config.display.frames_path(config.general.data_dir),
        timezone=config.historian.timezone,
    )


def _named(config: EnerboxConfig, loads: Sequence[L]) -> list[L]:
    """Loads without a name take their relay's (what Home Assistant shows)."""
    names = {r.id: r.name for r in config.relays.relays if r.name}
    return [load if load.name or load.relay not in names
            else load.model_copy(update={"name": names[load.relay]}) for load in loads]


# Each service's settings, built from the whole configuration.
SETTINGS: dict[str, Callable[[EnerboxConfig], Settings[Any]]] = {
    "teleinfo": lambda c: shared(c, c.teleinfo),
    "vedirect": lambda c: shared(c, c.vedirect),
    "inverter": lambda c: shared(c, c.inverter),
    "pulses": lambda c: shared(c, c.pulses),
    "temperature": lambda c: shared(c, c.temperature),
    "relays": lambda c: shared(c, c.relays),
    "shedding": lambda c: shared(c, c.shedding.model_copy(
        update={"loads": _named(c, c.shedding.loads)})),
    "automation": lambda c: shared(c, c.automation.model_copy(
        update={"loads": tuple(_named(c, c.automation.loads))})),
    "historian": lambda c: shared(c, c.historian),
    "display": lambda c: shared(c, c.display),
    "api": lambda c: shared(c, api_inputs(c)),
}


def settings_for(name: str, config: EnerboxConfig) -> Settings[Any]:
    """The settings the service ``name`` is built with."""
    return SETTINGS[name](config)

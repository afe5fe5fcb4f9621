"""Each service is given its own section plus the shared ones, never the whole file."""

from __future__ import annotations

from pathlib import Path

from services.api.config import ApiInputs, RelayRef
from services.app.registry import SERVICES, load
from services.app.root_config import SETTINGS, load_config, root_model, settings_for
from services.core.config import Settings
from services.core.service import Service
from services.historian.config import HistorianConfig
from services.relays.config import RelaysConfig
from tests.conftest import ROOT


def test_every_service_has_a_section_and_settings() -> None:
    assert set(SETTINGS) == set(SERVICES)
    assert set(SERVICES) <= set(root_model().model_fields)
    for entry in SERVICES.values():
        cls = load(entry.service)
        assert issubclass(cls, Service) and cls.name == entry.name


def test_a_service_gets_its_own_section(tmp_path: Path) -> None:
    config = load_config(ROOT / "config" / "enerbox.yaml", env={})
    relays = settings_for("relays", config)
    assert isinstance(relays, Settings) and isinstance(relays.section, RelaysConfig)
    assert relays.mqtt is config.mqtt and relays.general is config.general
    assert relays.homeassistant is config.homeassistant
    assert isinstance(settings_for("historian", config).section, HistorianConfig)


def test_the_api_gets_just_what_it_reads(tmp_path: Path) -> None:
    config = load_config(ROOT / "config" / "enerbox.yaml",
                         env={"ENERBOX_GENERAL__DATA_DIR": str(tmp_path)})
    inputs = settings_for("api", config).section
    assert isinstance(inputs, ApiInputs)
    assert inputs.api is config.api
    # The example config's automation steers the water heater.
    assert inputs.relays[0] == RelayRef("water-heater", "Chauffe-eau", "switch", automated=True)
    assert [r.kind for r in inputs.relays] == ["switch", "switch", "fil_pilote", "fil_pilote"]
    assert inputs.history_db == tmp_path / "history.sqlite3"
    assert inputs.tariffs.tariffs == config.historian.tariffs

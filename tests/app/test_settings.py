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


def test_steered_and_shed_loads_take_their_relays_names() -> None:
    """Home Assistant shows "Automatisme Chauffe-eau", not the relay's id: loads without a
    name of their own take the relay's (the example names its relays)."""
    config = load_config(ROOT / "config" / "enerbox.yaml", env={})
    names = {r.id: r.name for r in config.relays.relays}
    steered = settings_for("automation", config).section.loads
    shed = settings_for("shedding", config).section.loads
    assert steered and shed
    assert all(load.name == names[load.relay] for load in (*steered, *shed))
    assert isinstance(steered, tuple)
    # The file itself is untouched, and a load's own name wins.
    assert config.automation.loads[0].name is None
    first, *rest = config.automation.loads
    own = config.model_copy(update={"automation": config.automation.model_copy(
        update={"loads": (first.model_copy(update={"name": "Ballon"}), *rest)})})
    assert settings_for("automation", own).section.loads[0].name == "Ballon"

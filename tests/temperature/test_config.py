"""The temperature section: defaults, probes, and clear errors by key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.app.root_config import load_config
from services.core.config import ConfigError
from services.temperature.config import TemperatureConfig
from tests.conftest import ROOT


def error(section: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        TemperatureConfig.model_validate(section)
    return str(info.value)


def test_defaults() -> None:
    cfg = TemperatureConfig()
    assert cfg.root == Path("/sys/bus/w1/devices") and cfg.probes == []
    assert (cfg.interval_s, cfg.rescan_s, cfg.max_step_c) == (30, 300, 10)


def test_probe_addresses_are_checked_and_lower_cased() -> None:
    cfg = TemperatureConfig.model_validate(
        {"probes": [{"id": "tank-top", "address": " 28-0000075A3F01 "}]})
    assert cfg.probes[0].address == "28-0000075a3f01"
    assert "temperature probe's address" in error({"probes": [{"id": "x", "address": "28-12"}]})
    assert "temperature probe's address" in error(
        {"probes": [{"id": "ghost", "address": "00-400000000000"}]})
    assert "slug" in error({"probes": [{"id": "Tank top", "address": "28-0000075a3f01"}]})
    assert "repeated: 28-0000075a3f01" in error({"probes": [
        {"id": "a", "address": "28-0000075a3f01"}, {"id": "b", "address": "28-0000075a3f01"}]})
    assert "repeated: a" in error({"probes": [
        {"id": "a", "address": "28-0000075a3f01"}, {"id": "a", "address": "28-0000075a3f02"}]})
    assert "greater than 0" in error({"interval_s": 0})


def test_a_bad_key_is_named_in_the_report(tmp_path: Path) -> None:
    path = tmp_path / "enerbox.yaml"
    path.write_text("temperature:\n  probes:\n    - {id: top, address: 29-0000075a3f01}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, required=True, env={})
    assert "temperature.probes.0.address" in info.value.report()


def test_the_example_config_reads_the_simulated_tank() -> None:
    config = load_config(ROOT / "config" / "enerbox.yaml", env={})
    assert config.temperature.root == Path("run/sim/w1")
    assert [p.id for p in config.temperature.probes] == ["tank-top", "tank-bottom"]
    env = {"ENERBOX_TEMPERATURE__ROOT": "/sys/bus/w1/devices"}  # what docker-compose sets
    assert load_config(ROOT / "config" / "enerbox.yaml", env=env).temperature.root == Path(
        "/sys/bus/w1/devices")

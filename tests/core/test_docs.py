"""docs/CONFIG.md and docs/MQTT.md are generated from the code: they must not drift."""

from __future__ import annotations

from services.app.docs import config_markdown, mqtt_markdown
from tests.conftest import ROOT


def test_config_reference_is_up_to_date() -> None:
    current = (ROOT / "docs" / "CONFIG.md").read_text(encoding="utf-8")
    assert current == config_markdown() + "\n", "run: enerbox config docs > docs/CONFIG.md"


def test_mqtt_reference_is_up_to_date() -> None:
    current = (ROOT / "docs" / "MQTT.md").read_text(encoding="utf-8")
    assert current == mqtt_markdown() + "\n", "run: enerbox config docs --mqtt > docs/MQTT.md"


def test_every_section_and_key_is_documented() -> None:
    text = config_markdown()
    for section in ("general", "mqtt", "teleinfo", "vedirect", "relays", "shedding",
                    "historian", "api"):
        assert f"## `{section}`" in text
    assert "`historian.influxdb.disk_budget_mb`" in text
    assert "`relays.relays[].safe_state`" in text

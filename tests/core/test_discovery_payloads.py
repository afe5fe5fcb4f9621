"""Every discovery payload the services publish (built by their own builders from a reading
with every field): precision on numbers, QoS per component, VA not kVA, names in words."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from services.app.ha_catalog import catalog
from services.core.contract import Topics
from services.core.discovery import object_id, resolve_identity, stale_topic

COMPONENTS = [(topic, uid, comp) for topic, payload in catalog().items()
              for uid, comp in payload["components"].items()]


def _numeric(comp: dict[str, Any]) -> bool:
    return comp["platform"] == "sensor" and (
        "unit_of_measurement" in comp or "state_class" in comp)


def test_the_catalog_covers_every_kind_of_device() -> None:
    services = {topic.split("/")[2].split("_")[1] for topic, _, _ in COMPONENTS}
    assert services == {"teleinfo", "vedirect", "inverter", "temperature", "pulses",
                        "relays", "automation", "shedding"}
    assert len(COMPONENTS) > 150


@pytest.mark.parametrize(("topic", "uid", "comp"), COMPONENTS, ids=[c[1] for c in COMPONENTS])
def test_each_component(topic: str, uid: str, comp: dict[str, Any]) -> None:
    if _numeric(comp):  # HA's default shows a battery's 13.499 V as "13 V"
        assert isinstance(comp.get("suggested_display_precision"), int), uid
    # HA ignores a device-level qos: each component carries its own, 1 (commands too).
    assert comp["qos"] == 1, uid
    assert comp.get("unit_of_measurement") != "kVA", uid  # refused before HA 2025.10
    assert comp["unique_id"] == uid and uid.startswith(topic.split("/")[2])
    # Names in words, not raw keys (blue_hc, catch_up).
    assert comp["name"] is None or not re.search(r"[a-z]_[a-z]", comp["name"]), comp["name"]


def test_names_and_states_in_french() -> None:
    names = {c["name"] for _, _, c in COMPONENTS}
    assert {"Index HC bleu", "Index HP rouge", "Puissance apparente L1", "Tension batterie",
            "Charge L1", "Limite L3", "Raison du délestage", "Décidé par", "Jusqu'à"} <= names
    by_name = {(t.split("/")[2], c["name"]): c for t, _, c in COMPONENTS}
    tempo = by_name[("enerbox_teleinfo_dev", "Couleur Tempo demain")]
    assert tempo["options"] == ["Bleu", "Blanc", "Rouge", "Inconnue"]
    assert "'blue': 'Bleu'" in tempo["value_template"]
    period = by_name[("enerbox_teleinfo_dev", "Période tarifaire")]
    assert "'blue_hc': 'HC bleu'" in period["value_template"]
    mode = by_name[("enerbox_relays_living", "Mode")]  # "on": the user's manual mode
    assert mode["options"] == ["Automatique", "Manuel : marche", "Manuel : arrêt"]
    assert "'Manuel : marche': 'on'" in mode["command_template"]


def test_apparent_power_in_va() -> None:
    subscribed = next(c for _, _, c in COMPONENTS if c["unique_id"].endswith(
        "_subscribed_power_kva"))
    assert subscribed["unit_of_measurement"] == "VA"
    assert "* 1000" in subscribed["value_template"]


def test_diagnostics_and_service_status_are_diagnostic_entities() -> None:
    per_device: dict[str, set[str]] = {}
    for topic, uid, comp in COMPONENTS:
        if comp.get("entity_category") == "diagnostic":
            per_device.setdefault(topic, set()).add(uid.rsplit("_", 2)[-2] + "_"
                                                    + uid.rsplit("_", 1)[-1])
    assert len(per_device) == len(catalog())  # every device has its service's status
    assert all("service_status" in kinds for kinds in per_device.values())
    assert "dev_diagnostics" in per_device["homeassistant/device/enerbox_teleinfo_dev/config"]


def test_unique_id_base_is_saved_at_first_start_and_kept(tmp_path: Path) -> None:
    first = resolve_identity(None, "old-site", "demo", tmp_path)
    assert (first.base, first.previous) == ("old_site", None)
    assert object_id(Topics("old-site", "demo"), "linky") == "old_site_demo_linky"
    # The prefix changes: same base, same ids.
    again = resolve_identity(None, "new-site", "demo", tmp_path)
    assert (again.base, again.previous) == ("old_site", None)
    assert object_id(Topics("new-site", "demo"), "linky") == "old_site_demo_linky"
    # A base set explicitly: new ids, and the old discovery topic named for clearing.
    moved = resolve_identity("Maison", "new-site", "demo", tmp_path)
    assert (moved.base, moved.previous) == ("maison", "old_site")
    assert stale_topic(Topics("new-site", "demo"), "linky", "homeassistant") == (
        "homeassistant/device/old_site_demo_linky/config")
    # A service stopped before it cleared them clears them at its next start too.
    assert resolve_identity("Maison", "new-site", "demo", tmp_path).previous == "old_site"
    # Back to the first base: nothing to clear under it, the other one is what is stale.
    assert resolve_identity("old_site", "new-site", "demo", tmp_path).previous == "maison"


ENERGY = {  # docs/HOME-ASSISTANT.md's Energy dashboard recipe: (service, entity name)
    ("teleinfo", "Index HC bleu"), ("teleinfo", "Index total"), ("teleinfo", "Index injection"),
    ("inverter", "Énergie produite"), ("inverter", "Énergie soutirée"),
    ("inverter", "Énergie injectée"), ("vedirect", "Production totale"),
    ("vedirect", "Énergie chargée"), ("vedirect", "Énergie déchargée"), ("pulses", "Index"),
}


def test_the_energy_dashboard_entities_are_energy_totals() -> None:
    found = {(t.split("/")[2].split("_")[1], c["name"]): c for t, _, c in COMPONENTS}
    for key in ENERGY:
        comp = found[key]
        assert (comp["device_class"], comp["state_class"]) == ("energy", "total_increasing"), key

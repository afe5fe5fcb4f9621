"""Auto wishes on relays/<id>/auto: a wish counts only while its message expiry runs and
while automation/status is online; otherwise the relay falls back to its default."""

from __future__ import annotations

import json

from tests.relays.harness import Harness
from tests.relays.test_failsafe import publish_v5


def automation(h: Harness, online: bool) -> None:
    h.publish(f"{h.prefix}/automation/status", "online" if online else "offline", retain=True)


def test_a_wish_counts_while_its_expiry_runs(harness: Harness) -> None:
    h = harness
    automation(h, True)
    h.start()
    publish_v5(h, f"{h.prefix}/relays/water-heater/auto",
               json.dumps({"state": "on", "reason": "solar surplus"}), expiry_s=2)
    h.state("water-heater", lambda s: s["state"] == "on" and s["source"] == "auto")
    # The wish expires in relays itself (the broker drops the retained copy too).
    state = h.state("water-heater", lambda s: s["source"] == "default")
    assert state["state"] == "off"


def test_a_wish_needs_the_automation_online(harness: Harness) -> None:
    h = harness
    h.start()
    publish_v5(h, f"{h.prefix}/relays/living/auto", json.dumps({"order": "hors-gel"}),
               expiry_s=600)
    automation(h, True)
    h.state("living", lambda s: s["order"] == "hors-gel" and s["source"] == "auto")
    count = h.w.count()
    automation(h, False)  # its last will: every wish it wrote is no wish
    h.state("living", lambda s: s["order"] == "confort" and s["source"] == "default",
            after=count)
    count = h.w.count()
    automation(h, True)
    h.state("living", lambda s: s["order"] == "hors-gel", after=count)
    count = h.w.count()
    h.send("living", "", "auto", retain=True)  # cleared
    h.state("living", lambda s: s["source"] == "default", after=count)


def test_a_user_order_beats_a_wish_and_a_bad_wish_is_refused(harness: Harness) -> None:
    h = harness
    automation(h, True)
    h.start()
    h.send("bedroom", json.dumps({"state": "on"}), "auto")  # a zone told "on": confort
    h.state("bedroom", lambda s: s["order"] == "confort" and s["source"] == "auto")
    assert h.command("bedroom", "off").applied
    h.state("bedroom", lambda s: s["order"] == "arret" and s["source"] == "user")
    h.send("pump", json.dumps({"order": "eco"}), "auto")
    event = h.event("rejected")
    assert (event["relay"], event["topic"]) == ("pump", "auto")
    assert "switch" in event["reason"]

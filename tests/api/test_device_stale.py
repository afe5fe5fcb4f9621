"""Which devices the api calls stale: a display shows, it never measures, so its
availability alone says it is fine; a meter that never sent a state is stale."""

from __future__ import annotations

from services.api.live import Live
from services.core.contract import Topics


def test_display_without_state_is_not_stale_a_silent_meter_is() -> None:
    live = Live(topics=Topics("enerbox", "api"))
    live._availability("enerbox/display/hall/availability", b"online")
    live._availability("enerbox/teleinfo/linky/availability", b"online")
    views = {f"{d['service']}/{d['device']}": d for d in live.snapshot()["devices"]}
    assert views["display/hall"]["stale"] is False
    assert views["teleinfo/linky"]["stale"] is True
    live._availability("enerbox/display/hall/availability", b"offline")
    assert live.snapshot()["devices"][0]["stale"] is True  # offline is offline

"""A fil pilote order given while the zone is shed is shown in its state as `pending_order`
(the page's relay card says "applied when restored"), then applied and gone on restore."""

from __future__ import annotations

from pathlib import Path

from tests.relays.harness import PAIRS, Harness, zone


def test_pending_order_shown_while_shed_then_applied(harness: Harness, tmp_path: Path) -> None:
    harness.start()
    harness.send("living", '{"shed": true, "reason": "phase 1 at 95%"}', "shed", retain=True)
    state = harness.state("living", lambda s: s["shed"] is True)
    assert "pending_order" not in state  # nothing asked yet: nothing pending

    reply = harness.command("living", '{"order": "eco"}')
    assert (reply.accepted, reply.applied) == (True, False)
    state = harness.state("living", lambda s: "pending_order" in s)
    assert (state["pending_order"], state["order"], state["source"]) == ("eco", "arret", "shed")
    assert zone(tmp_path, 0) == PAIRS["arret"]

    harness.send("living", '{"shed": false}', "shed", retain=True)
    state = harness.state("living", lambda s: s["shed"] is False)
    assert (state["order"], state["source"]) == ("eco", "user")
    assert "pending_order" not in state
    assert zone(tmp_path, 0) == PAIRS["eco"]

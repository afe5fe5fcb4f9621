"""No message on any topic relays reads can stop it or change what it obeys (issue 11): each
hostile payload on every input, retained and not, then a command is still answered (by
correlation) and a shed flag still obeyed, also after a restart with the junk retained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.relays.harness import Harness

HOSTILE: dict[str, bytes] = {
    "brackets": b"[" * 100_000,
    "brackets-under-size-limit": b"[" * 60_000,
    "objects": b'{"a":' * 50_000,
    "small-objects": b'{"a":' * 200,
    "junk-1mb": bytes(range(256)) * 4096,
    "invalid-utf8": b"\xff\xfe\xfaON\xc3",
    "nan": b'{"mode": "on", "for_s": NaN}',
    "infinity": b'{"mode": "on", "for_s": Infinity, "interval_s": -Infinity}',
    "numbers-as-strings": b'{"mode": "on", "for_s": "60", "shed": "true", "interval_s": "5",'
                          b' "stale": "false", "state": "1", "ts": "now"}',
    "wrong-types": b'{"mode": 1, "order": [], "shed": {}, "state": 3, "interval_s": true,'
                   b' "stale": 1, "ts": 5, "reason": {"a": 1}}',
    "not-an-object": b"[1, 2, 3]",
    "a-string": b'"online"',
    "empty": b"",
}


def inputs(prefix: str) -> list[str]:
    """Every topic relays reads (for relay water-heater and meter linky)."""
    return [f"{prefix}/relays/water-heater/{leaf}" for leaf in ("set", "shed", "auto")] + [
        f"{prefix}/shedding/status", f"{prefix}/shedding/heartbeat",
        f"{prefix}/shedding/linky/state", f"{prefix}/automation/status",
    ]


def still_obeys(h: Harness, shed_after: int) -> None:
    """A valid command answered by correlation, and a shed flag obeyed, on the relay that got
    the junk."""
    reply = h.command("water-heater", "on")
    assert reply.accepted and reply.mode == "on"
    h.send("water-heater", '{"shed": true, "reason": "test"}', "shed")
    state = h.state("water-heater", lambda s: s["shed"] is True, after=shed_after)
    assert (state["state"], state["source"]) == ("off", "shed")
    h.send("water-heater", '{"shed": false}', "shed")
    state = h.state("water-heater", lambda s: s["shed"] is False and s["state"] == "on",
                    after=shed_after)
    assert state["source"] == "user"
    assert h.service is not None and h.service.healthy() and h.service.thread.is_alive()


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_payload_on_every_input(harness: Harness, name: str, tmp_path: Path) -> None:
    payload = HOSTILE[name]
    harness.start()
    harness.state("water-heater", lambda s: s["state"] == "off")
    for retain in (False, True):
        for topic in inputs(harness.prefix):
            harness.publish(topic, payload, retain=retain)
    still_obeys(harness, 0)
    # Restart with the junk retained on every input: it arrives again at subscribe time.
    harness.stop(clean=False)
    count = harness.w.count()
    harness.start()
    still_obeys(harness, count)
    events = [json.loads(m.payload) for m in harness.w.messages
              if m.topic.endswith("/relays/events")]
    assert not [e for e in events if e["type"] == "handler_failed"]  # refused, never raised
    rejected = [e for e in events if e["type"] == "rejected"]
    if payload:  # an empty payload clears a retained message: nothing to refuse
        assert rejected
    for event in rejected:
        assert event["topic"] in ("set", "shed", "auto", "status", "heartbeat", "state")
        assert len(event["excerpt"]) <= 80 and len(event["reason"]) <= 200


def test_command_forms_any_case_and_bounds(harness: Harness) -> None:
    harness.start()
    for payload, mode in (("On", "on"), ("oFF", "off"), ("AUTO", "auto"),
                          ('{"mode": "ON", "for_s": 1}', "on")):
        reply = harness.command("water-heater", payload)
        assert (reply.accepted, reply.mode) == (True, mode), payload
    year = 366 * 86400
    assert harness.command("water-heater", f'{{"mode": "on", "for_s": {year}}}').accepted
    for payload in ('{"mode": "on", "for_s": 0.5}', f'{{"mode": "on", "for_s": {year + 1}}}',
                    '{"mode": "on", "for_s": 1e400}', '{"mode": "on", "for_s": "60"}'):
        reply = harness.command("water-heater", payload)
        assert not reply.accepted and reply.reason and "for_s" in reply.reason, payload
    unknown = harness.command("garage", "ON")
    assert not unknown.accepted and "unknown relay" in (unknown.reason or "")


def test_command_while_shed_is_accepted_not_applied(harness: Harness) -> None:
    harness.start()
    harness.send("living", '{"shed": true, "reason": "peak"}', "shed")
    harness.state("living", lambda s: s["shed"] is True)
    reply = harness.command("living", '{"order": "eco"}')
    assert (reply.accepted, reply.applied, reply.order) == (True, False, "eco")
    harness.send("living", '{"shed": false}', "shed")
    harness.state("living", lambda s: s["order"] == "eco" and s["source"] == "user")
    assert harness.command("living", "off").applied is True


def test_a_bug_in_one_message_does_not_stop_the_thread(harness: Harness) -> None:
    service = harness.start()

    def broken(relay_id: str, payload: bytes) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    service._shed = broken  # type: ignore[method-assign]
    harness.send("living", '{"shed": true}', "shed")
    event = harness.event("handler_failed")
    assert "RecursionError" in event["error"]
    assert harness.command("living", "on").accepted
    assert service.healthy()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_dead_control_thread_is_unhealthy(harness: Harness) -> None:
    service = harness.start()
    harness.w.topic(f"{harness.prefix}/relays/heartbeat")
    assert service.healthy()

    class Dies(BaseException):
        """Not an Exception: nothing in the loop catches it (as a thread kill would)."""

    def die() -> None:
        raise Dies

    service._control = die  # type: ignore[method-assign]
    service.thread.join(10)
    assert not service.thread.is_alive()
    assert service.healthy() is False  # the runner exits; the heartbeat stops

"""A forced mode "until": "HH:MM": the deadline function (pure, both DST days of
Europe/Paris) and the relays service applying it on a real broker with a settable clock."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.core.contract import RelayCommand
from services.relays.config import RelaysConfig
from services.relays.model import RelayState, apply_command, expire, next_wall_time
from tests.conftest import Broker, Watcher
from tests.relays.harness import PAIRS, Clock, Harness, make_config, zone

PARIS = ZoneInfo("Europe/Paris")


def at(text: str) -> float:
    """Epoch seconds of an ISO time with its offset."""
    return datetime.fromisoformat(text).timestamp()


def local(epoch: float, tz: ZoneInfo = PARIS) -> str:
    """The local ISO time of an instant, with its offset (which side of a fold it is on)."""
    return datetime.fromtimestamp(epoch, tz).isoformat()


# -- the deadline, pure ------------------------------------------------------------------------

@pytest.mark.parametrize(("now", "hhmm", "ends"), [
    # An ordinary day: today while still ahead, else tomorrow; the same minute is tomorrow.
    ("2026-06-10T09:00:00+02:00", (14, 0), "2026-06-10T14:00:00+02:00"),
    ("2026-06-10T15:00:00+02:00", (14, 0), "2026-06-11T14:00:00+02:00"),
    ("2026-06-10T14:00:00+02:00", (14, 0), "2026-06-11T14:00:00+02:00"),
    ("2026-06-10T13:59:59+02:00", (14, 0), "2026-06-10T14:00:00+02:00"),
    ("2026-06-10T23:30:00+02:00", (6, 30), "2026-06-11T06:30:00+02:00"),
    ("2026-12-31T23:59:00+01:00", (0, 0), "2027-01-01T00:00:00+01:00"),
    # Spring, 2026-03-29: 02:00 CET jumps to 03:00 CEST. A time in the gap ends at the first
    # instant after it (03:00 CEST, 01:00 UTC), when the clock would have passed it.
    ("2026-03-29T00:10:00+01:00", (2, 30), "2026-03-29T03:00:00+02:00"),
    ("2026-03-29T00:10:00+01:00", (2, 0), "2026-03-29T03:00:00+02:00"),
    ("2026-03-29T01:59:00+01:00", (2, 59), "2026-03-29T03:00:00+02:00"),
    ("2026-03-29T03:00:00+02:00", (2, 30), "2026-03-30T02:30:00+02:00"),
    # Times on either side of the gap are real instants, 1 h apart by the clock but not in UTC.
    ("2026-03-29T00:10:00+01:00", (1, 59), "2026-03-29T01:59:00+01:00"),
    ("2026-03-29T00:10:00+01:00", (3, 0), "2026-03-29T03:00:00+02:00"),
    ("2026-03-29T00:10:00+01:00", (14, 0), "2026-03-29T14:00:00+02:00"),
    ("2026-03-28T15:00:00+01:00", (14, 0), "2026-03-29T14:00:00+02:00"),  # 23 h later
    # Autumn, 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:00-02:59 happen twice. The
    # next occurrence: the first (CEST), or the second (CET) once the first has passed.
    ("2026-10-25T00:10:00+02:00", (2, 30), "2026-10-25T02:30:00+02:00"),
    ("2026-10-25T02:40:00+02:00", (2, 30), "2026-10-25T02:30:00+01:00"),
    ("2026-10-25T02:30:00+02:00", (2, 30), "2026-10-25T02:30:00+01:00"),
    ("2026-10-25T02:40:00+01:00", (2, 30), "2026-10-26T02:30:00+01:00"),
    ("2026-10-25T00:10:00+02:00", (14, 0), "2026-10-25T14:00:00+01:00"),
    ("2026-10-24T15:00:00+02:00", (14, 0), "2026-10-25T14:00:00+01:00"),  # 25 h later
])
def test_next_wall_time(now: str, hhmm: tuple[int, int], ends: str) -> None:
    got = next_wall_time(at(now), *hhmm, PARIS)
    assert local(got) == ends
    assert got > at(now)


def test_dst_durations_are_real_hours() -> None:
    # From 00:00 to 06:00 local: 5 h of real time on the spring day, 7 h on the autumn day.
    spring = next_wall_time(at("2026-03-29T00:00:00+01:00"), 6, 0, PARIS)
    autumn = next_wall_time(at("2026-10-25T00:00:00+02:00"), 6, 0, PARIS)
    assert spring - at("2026-03-29T00:00:00+01:00") == 5 * 3600
    assert autumn - at("2026-10-25T00:00:00+02:00") == 7 * 3600


def test_another_zone_and_a_whole_hour_gap() -> None:
    new_york = ZoneInfo("America/New_York")  # 2026-03-08: 02:00 EST -> 03:00 EDT
    got = next_wall_time(at("2026-03-08T01:00:00-05:00"), 2, 15, new_york)
    assert local(got, new_york) == "2026-03-08T03:00:00-04:00"


def test_apply_command_sets_until_and_it_expires_there() -> None:
    state = RelayState()
    now = at("2026-03-29T01:50:00+01:00")
    apply_command(state, RelayCommand("on", until=(2, 30)), now, "Europe/Paris")
    assert state.until == at("2026-03-29T03:00:00+02:00") and state.mode == "on"
    ends = state.until
    assert not expire(state, ends - 1)
    assert expire(state, ends)
    assert state.mode == "auto" and state.until is None
    # A later command without an end clears it; for_s still counts from now.
    apply_command(state, RelayCommand("off", until=(6, 0)), now, "UTC")
    assert state.until == at("2026-03-29T06:00:00+00:00")
    apply_command(state, RelayCommand("on", for_s=60), now)
    assert state.until == now + 60
    apply_command(state, RelayCommand("on"), now)
    assert state.until is None


def test_timezone_is_checked() -> None:
    assert RelaysConfig().timezone == "Europe/Paris"
    assert RelaysConfig(timezone="America/New_York").timezone == "America/New_York"
    for bad in ("Europe/Atlantis", "../../etc/passwd", ""):
        with pytest.raises(ValidationError, match="time zone"):
            RelaysConfig(timezone=bad)


# -- the relays service ------------------------------------------------------------------------

class PinnedClock(Clock):
    """A wall clock that starts at a chosen instant and runs at the real pace; ``offset``
    moves it on."""

    def __init__(self, start: float) -> None:
        super().__init__()
        self.offset = start - time.time()


@pytest.fixture
def make_harness(tmp_path: Path, broker: Broker, prefix: str,
                 watch: Callable[[str], Watcher]) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(start: str, timezone: str = "Europe/Paris") -> Harness:
        h = Harness(make_config(tmp_path, broker, prefix, timezone=timezone),
                    PinnedClock(at(start)), watch(f"{prefix}/#"), broker, prefix)
        made.append(h)
        h.start()
        return h

    yield make
    for h in made:
        h.stop()


def utc(epoch: float) -> str:
    """The relay state's form of ``until``."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


def control_pass_done(h: Harness, after: int) -> None:
    """Wait until a control pass ran at the clock's present time: the order of another relay
    is applied in a pass that first runs the rules of every relay configured before it."""
    h.send("living", '{"order": "hors-gel"}')
    h.state("living", lambda s: s["order"] == "hors-gel", after=after)


def test_until_on_the_spring_day_ends_after_the_gap(make_harness: Callable[..., Harness]) -> None:
    h = make_harness("2026-03-29T01:50:00+01:00")
    reply = h.command("water-heater", '{"mode": "on", "until": "02:30"}')
    assert reply.accepted and reply.applied and reply.mode == "on"
    ends = at("2026-03-29T03:00:00+02:00")  # 02:30 does not exist that day
    assert reply.until is not None and reply.until.timestamp() == ends  # the caller sees which
    state = h.state("water-heater", lambda s: s["state"] == "on")
    assert (state["mode"], state["source"], state["until"]) == ("on", "user", utc(ends))
    event = h.event("command")
    assert event["until"] == utc(ends) and event["for_s"] is None
    count = h.w.count()
    h.clock.offset += ends - h.clock() - 60  # a minute before: still on
    control_pass_done(h, count)
    heater = f"{h.prefix}/relays/water-heater/state"
    assert all(json.loads(m.payload)["state"] == "on" for m in h.w.messages[count:]
               if m.topic == heater)
    h.clock.offset += 120
    state = h.state("water-heater", lambda s: s["state"] == "off", after=count)
    assert (state["mode"], state["until"], state["source"]) == ("auto", None, "default")
    h.event("forced_expired", after=count)


def test_an_order_until_the_autumn_morning(make_harness: Callable[..., Harness],
                                           tmp_path: Path) -> None:
    # 22:00 CEST the evening before the clocks go back: 06:30 CET is 9 h 30 of real time.
    h = make_harness("2026-10-24T22:00:00+02:00")
    reply = h.command("living", '{"order": "eco", "until": "06:30"}')
    assert reply.accepted
    state = h.state("living", lambda s: s["order"] == "eco")
    assert state["until"] == utc(at("2026-10-25T06:30:00+01:00")) == "2026-10-25T05:30:00Z"
    assert zone(tmp_path, 0) == PAIRS["eco"]
    count = h.w.count()
    h.clock.offset += 9.5 * 3600
    state = h.state("living", lambda s: s["mode"] == "auto", after=count)
    assert (state["order"], state["until"]) == ("confort", None)


def test_until_follows_the_configured_zone(make_harness: Callable[..., Harness]) -> None:
    # 13:00 in New York is 19:00 in Paris: "14:00" there is in 1 h, not tomorrow.
    h = make_harness("2026-06-10T13:00:00-04:00", timezone="America/New_York")
    h.command("water-heater", '{"mode": "off", "until": "14:00"}')
    state = h.state("water-heater", lambda s: s["mode"] == "off")
    assert state["until"] == "2026-06-10T18:00:00Z"


@pytest.mark.parametrize(("payload", "reason"), [
    ('{"mode": "on", "until": "14:00", "for_s": 600}', "either 'for_s' or 'until'"),
    ('{"mode": "auto", "until": "14:00"}', "'until' goes with a forced mode"),
    ('{"mode": "on", "until": "25:00"}', 'until must be a local time "HH:MM"'),
    ('{"mode": "on", "until": "14h"}', 'until must be a local time "HH:MM"'),
    ('{"mode": "on", "until": 1400}', 'until must be a local time "HH:MM"'),
])
def test_bad_until_is_rejected_with_the_reason(make_harness: Callable[..., Harness],
                                               payload: str, reason: str) -> None:
    h = make_harness("2026-06-10T09:00:00+02:00")
    reply = h.command("water-heater", payload)
    assert not reply.accepted and reply.reason is not None and reason in reply.reason
    event = h.event("rejected")
    assert event["relay"] == "water-heater" and reason in event["reason"]
    state = h.state("water-heater", lambda s: True)
    assert (state["mode"], state["until"]) == ("auto", None)  # nothing recorded

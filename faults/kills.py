"""Scenarios 1-3: kill -9 teleinfo, shedding, relays with loads on; time to the safe state."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from faults.report import Row
from faults.stack import (
    ON,
    PREFIX,
    RESTORE_DELAY_S,
    SAFE,
    STALE_AFTER_S,
    Stack,
    grace_s,
    on_topic,
    relay_is,
    relay_value,
    relays_state_expiry_s,
)
from faults.truth import Recorder, retained

LOADS = list(SAFE)


def time_to(stack: Stack, want: dict[str, str], after: float, bound: float) -> dict[str, Any]:
    """Per load, seconds from ``after`` until the board and the relay state show ``want``."""
    board: dict[str, float | None] = {}
    mqtt: dict[str, float | None] = {}
    deadline = after + bound
    for relay, value in want.items():
        at = stack.board.first(relay, value, after, max(0.0, deadline - time.monotonic()))
        board[relay] = None if at is None else round(at - after, 3)
        topic = f"{PREFIX}/relays/{relay}/state"
        before = stack.rec.last(topic, before=after)
        if before is not None and relay_value(before.json()) == value:
            mqtt[relay] = 0.0  # already so when the clock started
            continue
        seen = stack.rec.wait_for(relay_is(relay, value), max(0.0, deadline - time.monotonic()),
                                  after)
        mqtt[relay] = None if seen is None else round(seen.at - after, 3)
    return {"board_s": board, "mqtt_state_s": mqtt}


def worst(per_load: dict[str, float | None]) -> float | None:
    """The max over loads; None if any load never got there."""
    values = list(per_load.values())
    if not values or any(v is None for v in values):
        return None
    return max(v for v in values if v is not None)


def timeline(rec: Recorder, after: float) -> list[str]:
    """Status, availability and event messages since ``after``: '+1.02 s shedding:stale'."""
    with rec.lock:
        msgs = [m for m in rec.messages if m.at >= after and not m.retain]
    out = []
    for m in msgs:
        parts = m.topic.removeprefix(f"{PREFIX}/").split("/")
        if parts[-1] == "events":
            data = m.json() or {}
            what = f"{parts[0]}:{data.get('type', data.get('kind', '?'))}"
        elif parts[-1] in ("status", "availability"):
            what = f"{'/'.join(parts)} {m.payload[:20].decode('utf-8', 'replace')}"
        else:
            continue
        out.append(f"+{m.at - after:.2f} s {what}")
    return out[:40]


def _stragglers(per_load: dict[str, float | None]) -> str:
    never = [r for r, v in per_load.items() if v is None]
    return f"never safe: {', '.join(never)}" if never else ""


def teleinfo_killed(work: Path) -> list[Row]:
    """1. kill -9 teleinfo with loads on; then restart it and time the way back."""
    stack = Stack(work / "teleinfo")
    try:
        stack.wait_ready()
        stack.loads_on()
        limit = STALE_AFTER_S + 1
        bound = limit + 10
        t0 = stack.kill9("teleinfo")
        got = time_to(stack, SAFE, t0, bound)
        line = timeline(stack.rec, t0)
        chain = [e for e in line if "availability" in e or "stale" in e or "shedding_" in e]
        rows = [Row("kill -9 teleinfo (meter goes stale)", LOADS, worst(got["board_s"]), "s",
                    limit, bound, "; ".join(
                        [_stragglers(got["board_s"]) or
                         f"relay state max {_fmt(worst(got['mqtt_state_s']))}", *chain[:3]]),
                    details={**got, "timeline": line, "board_at_end": stack.board.current()})]
        t1 = time.monotonic()
        stack.start("teleinfo")
        back = time_to(stack, ON, t1, 40)
        rows.append(Row("teleinfo restarted: loads back under normal rules", LOADS,
                        worst(back["board_s"]), "s", None, 40,
                        "; ".join([f"shedding.restore_delay_s {RESTORE_DELAY_S:g} s",
                                   *[e for e in timeline(stack.rec, t1)
                                     if "shedding" in e or "fresh" in e][:2]]),
                        details={**back, "timeline": timeline(stack.rec, t1)}))
        return rows
    finally:
        stack.close()


def _fmt(v: float | None) -> str:
    return "never" if v is None else f"{v:.2f} s"


def shedding_killed(work: Path, peak_at_s: float = 30.0) -> list[Row]:
    """2. kill -9 shedding a few seconds before the simulated meter shows a 120 % peak."""
    stack = Stack(work / "shedding", peak_at_s=peak_at_s)
    try:
        stack.wait_ready()
        stack.loads_on()
        grace, configurable = grace_s()
        limit = grace + 1
        bound = limit + 12
        # The sim's clock starts about when its process does; kill ~3 s before the peak.
        kill_at = stack.sim_started + peak_at_s - 3
        late = time.monotonic() > kill_at
        time.sleep(max(0.0, kill_at - time.monotonic()))
        shed_before = stack.rec.wait_for(
            lambda m: m.topic.endswith("/shed") and (m.json() or {}).get("shed") is True, 0)
        t0 = stack.kill9("shedding")
        got = time_to(stack, SAFE, t0, bound)
        peak = stack.rec.wait_for(
            lambda m: m.topic == f"{PREFIX}/teleinfo/linky/state"
            and (m.json() or {}).get("apparent_power_va", 0) >= 9000,
            max(0.0, t0 + 12 - time.monotonic()), t0)
        notes = [_stragglers(got["board_s"])]
        if peak is not None:
            notes.append(f"peak on the meter at +{peak.at - t0:.1f} s")
        if late or shed_before is not None:
            notes.append("setup slow: the peak may have come before the kill")
        if not configurable:
            notes.append("relays.shedding_grace_s not in this main: limit from the brief")
        return [Row("kill -9 shedding, then 120 % peak", LOADS, worst(got["board_s"]), "s",
                    limit, bound, "; ".join(n for n in notes if n),
                    details={**got, "timeline": timeline(stack.rec, t0),
                             "board_at_end": stack.board.current()})]
    finally:
        stack.close()


def relays_killed(work: Path) -> list[Row]:
    """3. kill -9 relays: status, the retained state's claim, and the writes of the restart."""
    stack = Stack(work / "relays")
    commands = {"water-heater": '{"mode":"on","for_s":3600}', "living": '{"order":"confort"}',
                "bedroom": '{"order":"eco"}'}
    commanded = {"water-heater": "on", "living": "confort", "bedroom": "eco"}
    try:
        stack.wait_ready()
        stack.loads_on(commands, commanded)
        t0 = stack.kill9("relays")
        rows: list[Row] = []
        offline = stack.rec.wait_for(
            lambda m: m.topic == f"{PREFIX}/relays/status" and m.payload == b"offline", 5, t0)
        rows.append(Row("kill -9 relays: relays/status offline", [], None if offline is None
                        else round(offline.at - t0, 3), "s", 1.0, 5, "last will"))
        expiry, key = relays_state_expiry_s()
        limit = None if expiry is None else expiry + 1
        bound = 20.0 if limit is None else min(limit + 3, 40.0)
        cleared = _claim_gone(stack.port, t0, bound)
        rows.append(Row("kill -9 relays: retained state stops claiming readback_ok", LOADS,
                        cleared, "s", limit, bound,
                        f"limit from {key}" + ("" if limit is None or limit <= bound
                                               else f"; watched {bound:.0f} s only"),
                        details={"board_while_dead": stack.board.current()}))
        held = stack.board.current()
        versions = stack.board.versions
        t1 = time.monotonic()
        stack.start("relays")
        # Up again: online, and every relay's state published (start-up writes are over).
        up = stack.rec.wait_for(on_topic(f"{PREFIX}/relays/status"), 30, t1)
        for relay in LOADS:
            stack.rec.wait_for(on_topic(f"{PREFIX}/relays/{relay}/state"), 10, t1)
        back = time_to(stack, commanded, t1, 20)
        time.sleep(1.0)  # any stray write after the orders are back
        seq = stack.board.since(t1)
        patterns = {r: _dedupe([s.get(r) for _t, s in seq]) for r in LOADS}
        allowed = {r: {held.get(r), SAFE[r], commanded[r]} for r in LOADS}
        unexpected = {r: [v for v in vs if v not in allowed[r]] for r, vs in patterns.items()}
        bad = sum(len(v) for v in unexpected.values())
        writes = stack.board.versions - versions
        rows.append(Row("relays restart: board patterns other than held/safe/commanded",
                        LOADS, float(bad), "", 0.0, None,
                        "; ".join(f"{r}: {' > '.join(str(v) for v in vs)}"
                                  for r, vs in patterns.items())
                        + f"; {writes} board file versions seen"
                        + ("" if up else "; relays did not come back online"),
                        details={"sequence": [(round(t - t1, 4), s) for t, s in seq],
                                 "back_s": back, "board_file_versions": writes,
                                 "timeline": timeline(stack.rec, t1),
                                 "watch": "board files polled every 2 ms: a pattern held "
                                 "under 2 ms can be missed (the fake's own write record "
                                 "lives in the relays process)"}))
        return rows
    finally:
        stack.close()


def _dedupe(values: list[str | None]) -> list[str | None]:
    out: list[str | None] = []
    for v in values:
        if not out or out[-1] != v:
            out.append(v)
    return out


def _claim_gone(port: int, after: float, bound: float) -> float | None:
    """Seconds until no retained relays/+/state says readback_ok: true (polled as a newcomer)."""
    deadline = after + bound
    while time.monotonic() < deadline:
        now = time.monotonic()
        claims = [m for m in retained(port, f"{PREFIX}/relays/+/state")
                  if (m.json() or {}).get("readback_ok") is True
                  and (m.json() or {}).get("stale") is not True]
        if not claims:
            return round(now - after, 3)
        time.sleep(0.2)
    return None

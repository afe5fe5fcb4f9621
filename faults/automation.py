"""The automation's promises: no load left on by a dead automation or by stale data.

Two loads are driven on by the automation (a rule that holds while the meter's signal is
fresh): the water heater (default off) and the bedroom zone (default eco). Then:
1. kill -9 automation: the relays drop its wish (its last will says offline; the wish's
   message expiry, max(3 ticks, 30 s), bounds it when no will comes) -> each load's default;
2. automation restarted: the loads are driven on again;
3. SIGSTOP teleinfo (a hung reader: no state, no last will until the broker's keepalive runs
   out): the signal goes stale after `stale_after_s`, `when_stale: off` gives each load its
   off value at the next tick;
4. SIGSTOP automation (hung: no last will yet): its wishes' message expiry runs out.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from faults.kills import time_to, timeline, worst
from faults.report import Row
from faults.stack import STALE_AFTER_S, Stack

TICK_S = 1.0
DRIVEN = {"water-heater": "on", "bedroom": "confort"}
DEFAULTS = {"water-heater": "off", "bedroom": "eco"}
POWER_W = {"water-heater": 3000, "bedroom": 1000}  # as the shedding section says
ALWAYS = [{"signal": "grid", "above": -1_000_000}]  # holds while the signal is fresh
CONFIG: dict[str, Any] = {
    "automation": {
        "tick_s": TICK_S,
        "signals": {"grid": {"source": "teleinfo/linky", "field": "apparent_power_va",
                             "stale_after_s": STALE_AFTER_S}},
        "loads": [{"relay": relay, "require": ALWAYS, "power_w": POWER_W[relay],
                   "default": DEFAULTS[relay]} for relay in DRIVEN],
    },
}
WISH_EXPIRY_S = max(3 * TICK_S, 30.0)


def _wait_driven(stack: Stack, timeout: float = 45.0) -> None:
    start = time.monotonic()
    got = time_to(stack, DRIVEN, start, timeout)
    if worst(got["board_s"]) is None:
        dead = [n for n, p in stack.procs.items() if not p.alive()]
        raise RuntimeError(f"setup: the automation never drove {DRIVEN} (board "
                           f"{stack.board.current()}; exited: {dead or 'none'}; logs in "
                           f"{stack.work})")


def automation_faults(work: Path) -> list[Row]:
    """kill -9 automation, restart it, then hang teleinfo: times to each load's default."""
    stack = Stack(work / "automation", services=("relays", "teleinfo", "automation"),
                  config=CONFIG)
    loads = list(DRIVEN)
    stopped: int | None = None
    try:
        _wait_driven(stack)
        t0 = stack.kill9("automation")
        got = time_to(stack, DEFAULTS, t0, WISH_EXPIRY_S + 10)
        line = timeline(stack.rec, t0)
        will = next((e for e in line if "automation/status" in e), "no last will seen")
        rows = [Row("kill -9 automation (loads on by its wish)", loads, worst(got["board_s"]),
                    "s", WISH_EXPIRY_S, WISH_EXPIRY_S + 10, will,
                    details={**got, "timeline": line, "board_at_end": stack.board.current()})]
        t1 = time.monotonic()
        stack.start("automation")
        back = time_to(stack, DRIVEN, t1, 40)
        rows.append(Row("automation restarted: loads driven again", loads,
                        worst(back["board_s"]), "s", None, 40, "",
                        details={**back, "timeline": timeline(stack.rec, t1)}))
        limit = STALE_AFTER_S + TICK_S + 1
        stopped = stack.procs["teleinfo"].pid
        t2 = time.monotonic()
        os.kill(stopped, signal.SIGSTOP)
        stale = time_to(stack, DEFAULTS, t2, limit + 10)
        events = [e for e in timeline(stack.rec, t2) if "automation" in e]
        rows.append(Row("SIGSTOP teleinfo (the automation's signal goes stale)", loads,
                        worst(stale["board_s"]), "s", limit, limit + 10,
                        f"stale_after_s {STALE_AFTER_S:g} s + tick {TICK_S:g} s",
                        details={**stale, "timeline": events,
                                 "board_at_end": stack.board.current()}))
        os.kill(stopped, signal.SIGCONT)
        stopped = None
        _wait_driven(stack)
        rows.append(_hung_automation(stack, loads))
        return rows
    finally:
        for name in ("teleinfo", "automation"):
            proc = stack.procs.get(name)
            if proc is not None and proc.alive():
                os.kill(proc.pid, signal.SIGCONT)  # a stopped process cannot take its SIGTERM
        stack.close()


def _hung_automation(stack: Stack, loads: list[str]) -> Row:
    """SIGSTOP automation: no last will before the broker's keepalive runs out, so only the
    wish's message expiry can return the loads to their defaults."""
    t0 = time.monotonic()
    os.kill(stack.procs["automation"].pid, signal.SIGSTOP)
    limit = WISH_EXPIRY_S + 1
    got = time_to(stack, DEFAULTS, t0, limit + 10)
    line = timeline(stack.rec, t0)
    will = next((e for e in line if "automation/status" in e), "no last will before it")
    return Row("SIGSTOP automation (hung: its wishes expire)", loads, worst(got["board_s"]),
               "s", limit, limit + 10, f"wish expiry {WISH_EXPIRY_S:g} s; {will}",
               details={**got, "timeline": line, "board_at_end": stack.board.current()})


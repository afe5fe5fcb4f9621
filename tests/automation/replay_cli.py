"""Helpers for the replay tests: a config, recorded days as JSONL, the real command line."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.conftest import ROOT

PARIS = ZoneInfo("Europe/Paris")

CONFIG = """\
relays:
  boards: [{id: gpio, driver: gpio}]
  relays:
    - {id: water-heater, board: gpio, channel: 17}
    - {id: pool-pump, board: gpio, channel: 18}
    - {id: living, kind: fil_pilote, board: gpio, channels: [5, 6]}
automation:
  tick_s: 5
  signals:
    grid: {source: teleinfo/linky, field: net_power_va, stale_after_s: 30}
  tariff: teleinfo/linky
  surplus: {grid: grid, smoothing_s: 60, reserve_w: 50, step_s: 60}
  loads:
    - relay: water-heater
      power_w: 2000
      priority: 1
      surplus: {margin_w: 100, on_after_s: 60, off_import_w: 200, off_after_s: 180}
    - relay: pool-pump
      power_w: 900
      priority: 2
      surplus: {margin_w: 50, on_after_s: 60, off_import_w: 100, off_after_s: 180}
    - relay: living
      schedule: [{time: "17:00-22:30", order: confort}]
      default: eco
"""


def at(clock: str, day: str = "2026-07-01") -> datetime:
    """Local Paris time."""
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=PARIS)


def row(ts: datetime, topic: str, payload: Any) -> dict[str, Any]:
    """One input row."""
    return {"ts": ts.isoformat(), "topic": topic, "payload": payload}


def meter_rows(start: datetime, end: datetime, grid: Callable[[datetime], float],
               every_s: float = 10.0) -> list[dict[str, Any]]:
    """The Linky's state every ``every_s``: net power (the home without the steered loads)."""
    out, t = [], start
    while t <= end:
        period = "hc" if t.hour >= 22 or t.hour < 6 else "hp"
        out.append(row(t, "teleinfo/linky/state",
                       {"net_power_va": round(grid(t)), "tariff_period": period}))
        t += timedelta(seconds=every_s)
    return out


def sunny(t: datetime) -> float:
    """500 W of house load, less a sun that peaks at 13:30 with 4.5 kW."""
    h = t.hour + t.minute / 60
    return 500 - max(0.0, math.sin(math.pi * (h - 7) / 13)) * 4500


@dataclass
class Run:
    """What the command printed."""

    code: int
    lines: list[dict[str, Any]]
    stderr: str

    @property
    def summary(self) -> dict[str, Any]:
        """The last stderr line, as JSON."""
        parsed: dict[str, Any] = json.loads(self.stderr.strip().splitlines()[-1])
        return parsed

    def of(self, relay: str) -> list[dict[str, Any]]:
        """One relay's lines."""
        return [line for line in self.lines if line["relay"] == relay]


def write(path: Path, rows: Iterable[dict[str, Any] | str]) -> Path:
    """Rows (dicts, or raw text lines) as a JSONL file."""
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def replay(tmp_path: Path, rows: Iterable[dict[str, Any] | str], config: str = CONFIG,
           *extra: str) -> Run:
    """`python -m services.app automation replay --config ... day.jsonl`."""
    cfg = tmp_path / "enerbox.yaml"
    cfg.write_text(config, encoding="utf-8")
    day = write(tmp_path / "day.jsonl", rows)
    args = [sys.executable, "-m", "services.app", "automation", "replay", "--config", str(cfg)]
    args += list(extra) or [str(day)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENERBOX_")}
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    lines = [json.loads(x) for x in done.stdout.splitlines() if x.strip()]
    return Run(done.returncode, lines, done.stderr)

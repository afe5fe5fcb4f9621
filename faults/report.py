"""The figures: one row per measurement, printed as a table and written as JSON."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Row:
    """One measured figure: how long (or how much) against the limit it should stay within.

    ``value`` None means the wanted state was not reached within ``waited``.
    """

    fault: str
    loads: list[str]
    value: float | None
    unit: str  # "s", "ms", "MB", or "" for a yes/no figure
    limit: float | None
    waited: float | None = None
    note: str = ""
    ok: bool | None = None  # the verdict of a yes/no figure (no limit)
    details: dict[str, Any] = field(default_factory=dict)
    lost: int | None = None  # readings (data-path rows)
    duplicated: int | None = None
    promised: bool = True  # False: a figure measured to be known (two faults at once)

    @property
    def left_on(self) -> int | None:
        """Loads not in their safe state when the row's time ran out (control rows)."""
        if not self.loads or self.limit is None:
            return None
        board = self.details.get("board_s")
        if isinstance(board, dict):
            return sum(1 for v in board.values() if v is None)
        return len(self.loads) if self.within == "no" else 0

    @property
    def failed(self) -> bool:
        """Any reading lost or doubled, any load left on, any figure out of its limit."""
        if not self.promised:
            return False
        return (self.within == "no" or bool(self.lost) or bool(self.duplicated)
                or bool(self.left_on))

    @property
    def within(self) -> str:
        """yes / no / '-' (no limit: a figure to read, not to judge)."""
        if self.ok is not None:
            return "yes" if self.ok else "no"
        if self.limit is None:
            return "-"
        if self.value is None:
            return "no" if self.waited is None or self.waited >= self.limit else "?"
        return "yes" if self.value <= self.limit else "no"

    def shown(self) -> str:
        """The value as printed."""
        if self.value is None:
            return f">{self.waited:.0f} {self.unit}" if self.waited is not None else "n/a"
        digits = 2 if self.unit == "s" else 1
        return f"{self.value:.{digits}f} {self.unit}".strip()


def _limit(row: Row) -> str:
    if row.limit is None:
        return "-"
    return f"{row.limit:g} {row.unit}".strip()


def _count(n: int | None) -> str:
    return "-" if n is None else str(n)


def table(rows: list[Row]) -> str:
    """A plain-text table (also valid Markdown)."""
    head = ["fault", "lost", "duplicated", "recovered in / measured", "limit", "loads left on",
            "within", "note"]
    lines = [[r.fault, _count(r.lost), _count(r.duplicated), r.shown(), _limit(r),
              _count(r.left_on), r.within, r.note] for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h)
              for i, h in enumerate(head)]

    def fmt(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [fmt(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [fmt(line) for line in lines]
    return "\n".join(out)


def commit(rev: str = "HEAD", dirty: bool = True) -> str:
    """A commit's short hash (with '+dirty' when ``dirty`` and the tree has changes)."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.strip()
        changes = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("+dirty" if dirty and changes.strip() else "")


def write_json(rows: list[Row], path: Path, elapsed_s: float, version: str) -> None:
    """run/faults.json: the rows, the commit and the date."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": version,
        "elapsed_s": round(elapsed_s, 1),
        # Latencies on a shared 2-core box depend on what else runs: the load says how much.
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "rows": [{**asdict(r), "within": r.within, "shown": r.shown(), "left_on": r.left_on,
                  "failed": r.failed} for r in rows],
    }
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")

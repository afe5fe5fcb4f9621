"""A simulator's energy counters kept across restarts, so a restarted `make run` never shows
a meter running backwards (Home Assistant would record negative consumption).

The counters are saved atomically (services.core.store) every ``period_s`` and at stop, and
read back at start: a counter goes on from where it was, at most ``period_s`` behind after a
kill -9, never ahead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from services.core.store import load_json, save_json

log = logging.getLogger(__name__)

Counters = dict[str, float]
SAVE_PERIOD_S = 10.0


class CounterFile:
    """The state file of one simulator (``path`` None: nothing is kept)."""

    def __init__(self, path: Path | None, period_s: float = SAVE_PERIOD_S) -> None:
        self.path = path
        self.period_s = period_s
        self._saved_at = time.monotonic()

    def load(self) -> Counters:
        """The saved counters ({} the first time, or for a file that is not ours)."""
        if self.path is None:
            return {}
        data = load_json(self.path)
        if not isinstance(data, dict):
            return {}
        return {k: float(v) for k, v in data.items()
                if isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)}

    def save(self, counters: Counters) -> None:
        """Write the counters now."""
        if self.path is None:
            return
        try:
            save_json(self.path, counters)
        except OSError as exc:  # a full disk must not stop the simulator
            log.warning("cannot save the counters to %s: %s", self.path, exc)
        self._saved_at = time.monotonic()

    def tick(self, counters: Callable[[], Counters]) -> None:
        """Save when the last save is ``period_s`` old."""
        if self.path is not None and time.monotonic() - self._saved_at >= self.period_s:
            self.save(counters())


def restore(target: Counters, saved: Counters) -> Counters:
    """``target``'s keys with the saved values where there are some and they are not lower."""
    return {k: max(v, saved.get(k, v)) for k, v in target.items()}

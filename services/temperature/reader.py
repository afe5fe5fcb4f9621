"""One read cycle of every probe on the 1-Wire tree, with its filters; no MQTT.

Bulk when the bus master offers it: one ``trigger`` converts every probe of that bus at
once (one ~750 ms wait per bus instead of one per probe), then each probe's w1_slave is read
from its RAM. A read that fails is retried once, at once (CRC noise, a reset, a timing
fault); a held jump is not, since a brown-out can outlast a retry: the next cycle decides.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from services.temperature.validate import ProbeFilter, Verdict
from services.temperature.w1 import (
    Probe,
    RawRead,
    ReadError,
    has_bulk,
    list_probes,
    read_probe,
    trigger_bulk,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one probe gave in one cycle."""

    address: str
    value_c: float | None  # a good value to publish, else None
    verdict: Verdict | None  # None: the file could not be read
    raw: RawRead | None = None
    gone: bool = False  # its folder vanished: unplugged
    error: str | None = None


class BusReader:
    """The probes found under ``root`` and one filter per address (kept across unplugs)."""

    def __init__(self, root: Path, max_step_c: float) -> None:
        self.root = root
        self.max_step_c = max_step_c
        self.probes: dict[str, Probe] = {}
        self.filters: dict[str, ProbeFilter] = {}
        self.no_bulk: set[Path] = set()  # masters whose trigger failed (read-only mount)
        self.bulk_triggers = 0

    def filter(self, address: str) -> ProbeFilter:
        """The filter (and counters) of a probe."""
        if address not in self.filters:
            self.filters[address] = ProbeFilter(self.max_step_c)
        return self.filters[address]

    def rescan(self) -> tuple[list[str], list[str]]:
        """List the bus again: (addresses that appeared, addresses that vanished)."""
        found = {p.address: p for p in list_probes(self.root)}
        appeared = sorted(set(found) - set(self.probes))
        vanished = sorted(set(self.probes) - set(found))
        self.probes = found
        return appeared, vanished

    def bulk_masters(self) -> list[Path]:
        """Masters of the known probes that offer therm_bulk_read."""
        masters = {p.master for p in self.probes.values() if p.master is not None}
        return sorted(m for m in masters if m not in self.no_bulk and has_bulk(m))

    def cycle(self) -> list[Outcome]:
        """Read every known probe once (twice for a failed read); gone ones are dropped."""
        for master in self.bulk_masters():
            try:
                trigger_bulk(master)
                self.bulk_triggers += 1
            except OSError as exc:
                # e.g. /sys/bus/w1 mounted read-only: one conversion per probe instead.
                log.warning("service=temperature bulk read unavailable on %s (%s): reading "
                            "probes one by one", master.name, exc)
                self.no_bulk.add(master)
        outcomes = [self.read(probe) for probe in list(self.probes.values())]
        for outcome in outcomes:
            if outcome.gone:
                self.probes.pop(outcome.address, None)
        return outcomes

    def read(self, probe: Probe) -> Outcome:
        """One probe, retried once unless good, gone or a held jump."""
        filt = self.filter(probe.address)
        outcome = self._read_once(probe, filt)
        if outcome.value_c is None and not outcome.gone and outcome.verdict is not Verdict.STEP:
            filt.counters.retries += 1
            outcome = self._read_once(probe, filt)
        return outcome

    @staticmethod
    def _read_once(probe: Probe, filt: ProbeFilter) -> Outcome:
        try:
            raw = read_probe(probe)
        except ReadError as exc:
            if exc.gone:
                return Outcome(probe.address, None, None, gone=True, error=str(exc))
            filt.read_failed(str(exc))
            return Outcome(probe.address, None, None, error=str(exc))
        verdict, value = filt.check(raw)
        error = None if value is not None else filt.counters.last_error
        return Outcome(probe.address, value, verdict, raw, error=error)

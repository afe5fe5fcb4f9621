"""The short data-path fault run (make test): every fault, every reading counted, 0 lost.

`make faults` runs the same with the full durations (a 30-minute historian outage); this one
keeps make test short: an 18 s historian outage with a 3 s state expiry (six expiries
over), a 6 s database outage, two historian kills, a broker restart while the historian is
down, a broker kill -9, kill -9 of every producer and a power cut.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from faults.data import data_path_short
from faults.report import table
from tests.faults.test_smoke import _processes_using


@pytest.mark.timeout(300)
def test_no_reading_lost_or_doubled_across_any_one_fault(tmp_path: Path) -> None:
    rows = data_path_short(tmp_path)
    print(table(rows))  # the figures, in the test's output
    failed = [(r.fault, r.lost, r.duplicated, r.note) for r in rows if r.failed]
    assert not failed, table(rows)
    faults = [r for r in rows if r.lost is not None]
    assert len(faults) >= 10
    # Readings flowed through the whole run (a run that counted nothing proves nothing).
    assert sum(r.details["readings"] for r in faults) > 150
    assert rows[-1].fault.startswith("PRAGMA integrity_check") and rows[-1].ok
    assert not _processes_using(tmp_path)

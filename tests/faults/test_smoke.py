"""`make faults` harness, end to end on one scenario: real mosquitto, services and simulator.

It checks that the harness measures and cleans up, not what it measures: the figures are
the fault run's output (docs/FAULTS.md), never a test's pass/fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from faults.kills import LOADS, teleinfo_killed


def _processes_using(path: Path) -> list[int]:
    """Pids whose environment or command line names ``path`` (ENERBOX_CONFIG, --link)."""
    needle = str(path.resolve()).encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            blob = (proc / "environ").read_bytes() + (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in blob:
            found.append(int(proc.name))
    return found


@pytest.mark.timeout(90)
def test_teleinfo_scenario_runs_end_to_end_and_leaves_nothing_running(tmp_path: Path) -> None:
    rows = teleinfo_killed(tmp_path)

    kill, back = rows
    assert kill.fault.startswith("kill -9 teleinfo")
    assert kill.loads == LOADS
    # Every load was watched on the board file and on MQTT, reached or not.
    assert set(kill.details["board_s"]) == set(LOADS)
    assert set(kill.details["mqtt_state_s"]) == set(LOADS)
    assert kill.within in ("yes", "no")
    assert back.fault.startswith("teleinfo restarted")
    assert not _processes_using(tmp_path)

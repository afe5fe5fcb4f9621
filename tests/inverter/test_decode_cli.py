"""`enerbox decode sunspec FILE.json`: one JSON object per device group, the summary on
stderr, exit 2 for a file that is not a register image."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from services.inverter.decode import main
from tests.conftest import ROOT, fixture

ENERBOX = [sys.executable, "-m", "services.app.cli", "decode", "sunspec"]
SMA_CHAIN = [1, 11, 12, 101, 120, 121, 122, 123, 124, 126, 127, 128, 131, 132, 160, 129, 130]


def run(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ENERBOX, str(path)], capture_output=True, text=True, cwd=ROOT,
                          timeout=60, check=False)


def test_a_fixture_image_prints_its_device_and_summary() -> None:
    result = run(fixture("sunspec", "sma_sunnyboy36_20230810.json"))
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    device = json.loads(line)
    assert device["kind"] == "inverter" and device["serial"] == "3005067415"
    assert (device["ac_power_w"], device["ac_energy_wh"], device["status"]) == (
        1080, 21707970, "mppt")
    assert json.loads(result.stderr) == {"models": SMA_CHAIN, "devices": 1}


@pytest.mark.parametrize(("content", "message"), [
    (None, "No such file"),
    ("not json", "is not JSON"),
    ('{"base": 40000}', 'no "registers"'),
    ('{"base": 40000, "registers": [1, 2, 3, 4]}', "no SunSpec 'SunS' marker"),
    ('{"base": 40000, "registers": [21365, -1]}', "16-bit"),
])
def test_a_bad_file_exits_2_with_a_message(tmp_path: Path, content: str | None,
                                           message: str) -> None:
    """In process (the command's own function): a subprocess per case costs a second."""
    path = tmp_path / "image.json"
    if content is not None:
        path.write_text(content)
    out, err = io.StringIO(), io.StringIO()
    assert main(str(path), out, err) == 2
    assert message in err.getvalue() and out.getvalue() == ""


def test_the_command_exits_2_on_a_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "image.json"
    path.write_text("[1, 2")
    result = run(path)
    assert result.returncode == 2
    assert "is not JSON" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""

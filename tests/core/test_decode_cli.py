"""`enerbox decode teleinfo|vedirect FILE`: JSON lines on stdout, one summary on stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, tic_fixture, vedirect_fixture

ENERBOX = [sys.executable, "-m", "services.app.cli", "decode"]


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*ENERBOX, *args], input=stdin, capture_output=True, cwd=ROOT,
                          timeout=60, check=False)


@pytest.mark.parametrize(("protocol", "path", "summary"), [
    ("teleinfo", "std_tri_tempo_noisy_teleinfo-nom.bin",
     {"readings": 7, "frames": 7, "groups_valid": 373, "groups_invalid": 10}),
    ("teleinfo", "hist_mono_tempo_pyteleinfo.bin",
     {"readings": 10, "frames": 10, "groups_valid": 160, "groups_invalid": 0}),
    ("vedirect", "mppt_bluesolar_75-15_fw123_karioja.dump",
     {"readings": 248, "blocks_valid": 248, "blocks_invalid": 0, "hex_messages": 7}),
    ("vedirect", "mppt_smartsolar_100-20_fw139_karioja.dump",
     {"readings": 493, "blocks_valid": 493, "blocks_invalid": 1, "hex_messages": 2}),
])
def test_decode_file(protocol: str, path: str, summary: dict[str, int]) -> None:
    file = tic_fixture(path) if protocol == "teleinfo" else vedirect_fixture(path)
    result = run(protocol, str(file))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    got = json.loads(result.stderr.decode().strip().splitlines()[-1])
    assert {k: got[k] for k in summary} == summary
    assert len(lines) == summary["readings"]
    for line in lines:
        reading = json.loads(line)
        assert "ts" not in reading and reading  # absent fields left out, no timestamps


def test_decode_stdin_and_forced_mode() -> None:
    data = tic_fixture("excerpt_hist_mono_tempo_one_frame.bin").read_bytes()
    result = run("teleinfo", "-", "--mode", "historique", stdin=data)
    assert result.returncode == 0
    assert json.loads(result.stdout)["meter_id"] == "021861348497"
    wrong = run("teleinfo", "-", "--mode", "standard", stdin=data)
    assert wrong.returncode == 0 and wrong.stdout == b""
    summary, hint = wrong.stderr.splitlines()  # the summary, then what to fix
    assert json.loads(summary)["groups_valid"] == 0
    assert hint.startswith(b"hint: this capture is in historique mode")


def test_unreadable_file_exits_2_with_a_message(tmp_path: Path) -> None:
    for protocol in ("teleinfo", "vedirect"):
        result = run(protocol, str(tmp_path / "absent.bin"))
        assert result.returncode == 2
        assert b"cannot read" in result.stderr and b"No such file" in result.stderr
        assert b"Traceback" not in result.stderr
    result = run("vedirect", str(tmp_path))  # a directory
    assert result.returncode == 2 and b"Traceback" not in result.stderr


def test_garbage_is_not_an_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 20)
    for protocol in ("teleinfo", "vedirect"):
        result = run(protocol, str(junk))
        assert result.returncode == 0 and result.stdout == b""

"""`enerbox decode` on the wrong protocol, the wrong mode, an empty input or a capture read 8N1:
a hint on stderr of what to fix, the exit code as before. Real captures from ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.app.cli import main
from tests.conftest import fixture, tic_fixture, vedirect_fixture

HIST = "hist_mono_tempo_pyteleinfo.bin"
STD = "std_mono_producer_openhab_rebuilt.bin"


def decode(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    """Exit code and the hint lines."""
    code = main(["decode", *args])
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.startswith("hint: ")]


def test_a_right_capture_gets_no_hint(capsys: pytest.CaptureFixture[str]) -> None:
    assert decode(capsys, "teleinfo", str(tic_fixture(HIST))) == (0, [])
    assert decode(capsys, "vedirect", str(vedirect_fixture("bmv712_velog-002.log"))) == (0, [])


@pytest.mark.parametrize(("name", "wrong", "right"), [(HIST, "standard", "historique"),
                                                     (STD, "historique", "standard")])
def test_wrong_mode(capsys: pytest.CaptureFixture[str], name: str, wrong: str,
                    right: str) -> None:
    code, hints = decode(capsys, "teleinfo", str(tic_fixture(name)), "--mode", wrong)
    assert code == 0
    assert hints == [f"hint: this capture is in {right} mode, not {wrong}: drop --mode (it "
                     f"detects the mode) or give --mode {right}"]


def test_wrong_protocol(capsys: pytest.CaptureFixture[str]) -> None:
    code, hints = decode(capsys, "teleinfo", str(vedirect_fixture("bmv712_velog-002.log")))
    assert code == 0 and hints == [
        "hint: this is a Victron VE.Direct capture: enerbox decode vedirect FILE"]
    code, hints = decode(capsys, "vedirect", str(tic_fixture(HIST)))
    assert code == 0 and len(hints) == 1 and "enerbox decode teleinfo FILE" in hints[0]
    image = fixture("sunspec", "sma_sunnyboy36_20230810.json")
    code, hints = decode(capsys, "teleinfo", str(image))
    assert code == 0 and len(hints) == 1 and "enerbox decode sunspec FILE" in hints[0]
    code, hints = decode(capsys, "sunspec", str(tic_fixture(HIST)))
    assert code == 2 and len(hints) == 1 and "enerbox decode teleinfo FILE" in hints[0]


def test_empty_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    empty = tmp_path / "capture.bin"
    empty.write_bytes(b"")
    for protocol, stty in (("teleinfo", "cs7 parenb"), ("vedirect", "19200 cs8")):
        code, hints = decode(capsys, protocol, str(empty))
        assert code == 0 and len(hints) == 1
        assert "the input is empty" in hints[0] and stty in hints[0]


def test_capture_read_without_7e1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # What `cat` gives on a port left at 8N1: each byte with its even-parity bit on top.
    raw = tic_fixture(HIST).read_bytes()
    parity = bytes(b | 0x80 if bin(b).count("1") % 2 else b for b in raw)
    (tmp_path / "capture.bin").write_bytes(parity)
    code, hints = decode(capsys, "teleinfo", str(tmp_path / "capture.bin"))
    assert code == 0 and len(hints) == 1
    assert "parity bit" in hints[0] and "cs7 parenb -parodd" in hints[0]
    assert "historique" in hints[0]

"""What to fix when `enerbox decode` found nothing: the wrong protocol, the wrong TIC mode, an
empty capture, or a TIC capture read 8N1 instead of 7E1 (every byte's parity bit kept).

Pure: the first bytes of the input and the summary in, sentences out. The decoders are tried
on that sample, so a hint names only what would really have decoded.
"""

from __future__ import annotations

import io
import json
from typing import IO, Any

from services.teleinfo.protocol import Decoder as TicDecoder
from services.teleinfo.protocol import Mode
from services.vedirect.protocol import Decoder as VeDecoder

SAMPLE_BYTES = 65536  # a few dozen TIC frames or VE.Direct blocks
_HIGH_SHARE = 0.2  # 7-bit text read 8N1 with even parity: about half the bytes are >= 0x80
_STTY = {Mode.HISTORIQUE: "1200", Mode.STANDARD: "9600"}


class Recorder(io.RawIOBase):
    """A byte stream that keeps its first SAMPLE_BYTES for the hints."""

    def __init__(self, source: IO[bytes]) -> None:
        super().__init__()
        self._source = source
        self.sample = bytearray()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        if len(self.sample) < SAMPLE_BYTES:
            self.sample += data[: SAMPLE_BYTES - len(self.sample)]
        return n


def tic_modes(sample: bytes) -> list[Mode]:
    """The TIC modes in which the sample holds valid frames."""
    found = []
    for mode in Mode:
        decoder = TicDecoder(mode)
        for _frame in decoder.feed(sample):
            pass  # the counters are what tells
        if decoder.stats.frames_valid:
            found.append(mode)
    return found


def is_vedirect(sample: bytes) -> bool:
    """True when the sample holds a valid VE.Direct text block."""
    decoder = VeDecoder()
    list(decoder.feed(sample))
    list(decoder.finish())
    return decoder.stats.blocks_valid > 0


def is_json(sample: bytes) -> bool:
    """True for a JSON document (a SunSpec register image)."""
    try:
        json.loads(sample.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return sample.lstrip()[:1] in (b"{", b"[") and b'"' in sample[:200]  # cut by the sample
    return True


def _parity_stripped(sample: bytes) -> bytes | None:
    """The sample without its parity bits, when it looks like 7-bit text read 8N1."""
    if not sample or sum(b >= 0x80 for b in sample) / len(sample) < _HIGH_SHARE:
        return None
    return bytes(b & 0x7F for b in sample)


def _stty(mode: Mode) -> str:
    return f"stty -F /dev/ttyUSB0 {_STTY[mode]} cs7 parenb -parodd -icanon -echo"


def hints(protocol: str, mode: str | None, sample: bytes, readings: int) -> list[str]:
    """What to fix, as sentences for stderr (none when ``readings``, what was decoded, > 0)."""
    if not sample:
        return [_empty(protocol)]
    if readings:
        return []
    found = []
    if protocol == "teleinfo":
        found += _teleinfo(mode, sample)
    elif protocol == "vedirect":
        modes = tic_modes(sample) or tic_modes(_parity_stripped(sample) or b"")
        if modes:
            found.append(f"this is a Linky TIC capture ({modes[0]} mode), not VE.Direct: "
                         f"enerbox decode teleinfo FILE")
    if protocol != "vedirect" and is_vedirect(sample):
        found.append("this is a Victron VE.Direct capture: enerbox decode vedirect FILE")
    if protocol == "sunspec":
        modes = tic_modes(sample)
        if modes:
            found.append("this is a Linky TIC capture, not a register image: "
                         "enerbox decode teleinfo FILE")
    elif is_json(sample):
        found.append("this is JSON (a SunSpec register image?): enerbox decode sunspec FILE")
    return found


def _empty(protocol: str) -> str:
    if protocol == "teleinfo":
        return ("the input is empty: nothing was captured. On the box: "
                f"{_stty(Mode.HISTORIQUE)} (standard mode: 9600), then "
                "`timeout 10 cat /dev/ttyUSB0 > capture.bin`")
    if protocol == "vedirect":
        return ("the input is empty: nothing was captured. On the box: stty -F /dev/ttyUSB0 "
                "19200 cs8 -parenb -icanon -echo, then `timeout 10 cat /dev/ttyUSB0 > capture.bin`")
    return "the input is empty: a SunSpec register image is a JSON file (enerbox sim inverter)"


def _teleinfo(mode: str | None, sample: bytes) -> list[str]:
    stripped = _parity_stripped(sample)
    if stripped is not None:
        modes = tic_modes(stripped)
        if modes:
            return [f"the bytes carry their parity bit (bit 7): the port was read 8N1, not 7E1 "
                    f"({modes[0]} mode). Capture after `{_stty(modes[0])}`, or clear the bit: "
                    "python3 -c \"import sys; sys.stdout.buffer.write(bytes(b & 127 for b in "
                    "sys.stdin.buffer.read()))\" < FILE > fixed.bin"]
    modes = tic_modes(sample)
    if mode is not None and modes and Mode(mode) not in modes:
        return [f"this capture is in {modes[0]} mode, not {mode}: drop --mode (it detects "
                f"the mode) or give --mode {modes[0]}"]
    return []

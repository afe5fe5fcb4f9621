"""Linky TIC (téléinformation client) framing and group parsing: bytes in, frames out, no I/O.

Both modes share the wire shape: frame = STX groups ETX, group = LF content CR.
Historique content is ``LABEL SP VALUE SP CS`` with the checksum over ``LABEL SP VALUE``;
standard content is ``LABEL HT [HORODATE HT] VALUE HT CS`` with the checksum over everything
up to and including the last HT. Checksum = (sum of bytes & 0x3F) + 0x20.
"""

from __future__ import annotations

import enum
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

STX, ETX, EOT, LF, CR, SP, HT = 0x02, 0x03, 0x04, 0x0A, 0x0D, 0x20, 0x09
_STX_B, _ETX_B, _EOT_B = b"\x02", b"\x03", b"\x04"

# Longest legitimate group: PJOURF+1 (98-char value) with label, separators and checksum is
# about 110 bytes. Above 256 bytes the adler32 shortcut below could wrap, so such a group
# is malformed by definition.
MAX_GROUP_LEN = 256
# A three-phase standard frame is about 1.6 kB; anything much longer lost its ETX.
MAX_FRAME_LEN = 4096


class Mode(enum.StrEnum):
    """TIC mode of a Linky: the meter's setting, seen on its display."""

    HISTORIQUE = "historique"
    STANDARD = "standard"

    @property
    def baudrate(self) -> int:
        """Line speed of this mode (both are 7E1)."""
        return 1200 if self is Mode.HISTORIQUE else 9600

    @property
    def separator(self) -> int:
        """Byte between label, horodate and value."""
        return SP if self is Mode.HISTORIQUE else HT


def checksum(span: bytes) -> int:
    """TIC checksum character of a span: (sum of bytes & 0x3F) + 0x20."""
    return (sum(span) & 0x3F) + 0x20


class Group(NamedTuple):
    """One valid information group; ``number`` is its value as an integer when it is one.

    A NamedTuple, not a dataclass: frames compare and count groups in C.
    """

    label: str
    value: str
    horodate: str | None = None
    number: int | None = None


@dataclass(frozen=True, slots=True)
class Frame:
    """A complete frame: its valid groups by label, and how many groups were rejected."""

    mode: Mode
    groups: dict[str, Group]
    invalid: int = 0  # well-formed groups whose checksum failed
    malformed: int = 0  # groups without a valid structure (missing separator, too long, ...)
    rejected: tuple[bytes, ...] = field(default=(), repr=False)

    @property
    def valid(self) -> bool:
        """True when every group of the frame passed its checksum."""
        return self.invalid == 0 and self.malformed == 0

    def value(self, label: str) -> str | None:
        """Value of a group, or None when the frame has no valid group with that label."""
        group = self.groups.get(label)
        return None if group is None else group.value


# A parsed group is cached by its exact bytes: a meter repeats most groups unchanged from one
# frame to the next, so a bounded memo saves most of the per-group work on a real stream.
_INVALID = object()
_MALFORMED = object()
_GroupResult = Group | object


class GroupCache:
    """Bounded memo from a group's bytes to its parse result, one table per mode."""

    __slots__ = ("max_entries", "tables")

    def __init__(self, max_entries: int = 2048) -> None:
        self.tables: dict[Mode, dict[bytes, _GroupResult]] = {m: {} for m in Mode}
        self.max_entries = max_entries

    def miss(self, raw: bytes, mode: Mode) -> _GroupResult:
        """Parse a group not in the table, and remember it (the table is cleared when full)."""
        result = parse_group(raw, mode)
        if self.max_entries:
            table = self.tables[mode]
            if len(table) >= self.max_entries:
                table.clear()
            table[raw] = result
        return result


def parse_group(piece: bytes, mode: Mode) -> _GroupResult:
    """Parse one group: the bytes after its LF, CR included.

    Returns a Group, or the _INVALID (checksum failed) / _MALFORMED (no CR, missing
    separator, too long) markers.
    """
    n = len(piece)
    if n < 5 or n > MAX_GROUP_LEN or piece[-1] != CR:
        return _MALFORMED
    raw = piece[:-1]
    # 7E1 leaves bit 7 clear; a byte with it set is line noise the checksum (mod 64) can't see.
    if b"\r" in raw or not raw.isascii():
        return _MALFORMED
    if raw[-2] != (SP if mode is Mode.HISTORIQUE else HT):
        return _MALFORMED
    if mode is Mode.HISTORIQUE:
        span = raw[:-2]
        label_b, found, value_b = span.partition(b" ")
        if not found or not label_b or b"\t" in span:
            return _MALFORMED
        horodate_b = None
    else:
        span = raw[:-1]
        parts = raw[:-2].split(b"\t")
        if len(parts) == 2:
            label_b, value_b = parts
            horodate_b = None
        elif len(parts) == 3:
            label_b, horodate_b, value_b = parts
        else:
            return _MALFORMED
        if not label_b:
            return _MALFORMED
    # adler32's low half is 1 + sum(bytes) while the sum stays under 65521 (len <= 256 here):
    # a C-speed byte sum.
    if ((zlib.adler32(span) - 1) & 0x3F) + 0x20 != raw[-1]:
        return _INVALID
    value = value_b.decode("latin-1")
    return Group(
        label_b.decode("latin-1"),
        value,
        None if horodate_b is None else horodate_b.decode("latin-1"),
        int(value) if value.isdecimal() else None,  # ASCII-only here, so int() agrees
    )


def detect_mode(body: bytes) -> Mode:
    """Mode of a frame body from its separators: standard groups always carry HT."""
    return Mode.STANDARD if b"\t" in body else Mode.HISTORIQUE


@dataclass(slots=True)
class FramerStats:
    """Counters kept by the framer (the service publishes them as diagnostics)."""

    frames: int = 0
    frames_valid: int = 0
    frames_interrupted: int = 0  # cut by EOT, a stray STX, or the end of the stream
    frames_oversized: int = 0
    groups_valid: int = 0
    groups_invalid: int = 0
    groups_malformed: int = 0
    bytes_skipped: int = 0  # bytes outside any complete frame


class Decoder:
    """Incremental TIC decoder: ``feed`` bytes as they come, get complete frames back.

    Bytes before the first STX (a stream opened mid-frame), frames cut by EOT or by a stray
    STX, and frames longer than MAX_FRAME_LEN are dropped and counted; the buffer never
    holds more than MAX_FRAME_LEN bytes.
    """

    def __init__(self, mode: Mode | None = None, cache: GroupCache | None = None) -> None:
        self.mode = mode  # None: detected per frame
        self.stats = FramerStats()
        self._buf = bytearray()
        self._in_frame = False
        self._cache = cache if cache is not None else GroupCache()

    def feed(self, data: bytes) -> Iterator[Frame]:
        """Consume bytes; yield every frame they complete."""
        buf = self._buf
        buf += data
        pos = 0
        stats = self.stats
        while True:
            if not self._in_frame:
                start = buf.find(_STX_B, pos)
                if start < 0:
                    stats.bytes_skipped += len(buf) - pos
                    pos = len(buf)
                    break
                stats.bytes_skipped += start - pos
                pos = start + 1
                self._in_frame = True
            end = buf.find(_ETX_B, pos)
            if end < 0:
                if len(buf) - pos > MAX_FRAME_LEN:
                    stats.frames_oversized += 1
                    stats.bytes_skipped += len(buf) - pos
                    pos = len(buf)
                    self._in_frame = False
                break
            self._in_frame = False
            body = bytes(buf[pos:end])
            pos = end + 1
            # A stray STX inside means the frame we were in was cut: keep the last part only.
            restart = body.rfind(_STX_B)
            if restart >= 0:
                stats.frames_interrupted += 1
                stats.bytes_skipped += restart + 1
                body = body[restart + 1 :]
            if _EOT_B in body:
                stats.frames_interrupted += 1
                stats.bytes_skipped += len(body)
                continue
            if len(body) > MAX_FRAME_LEN:
                stats.frames_oversized += 1
                stats.bytes_skipped += len(body)
                continue
            yield self.parse_body(body)
        del buf[:pos]

    def finish(self) -> None:
        """Account for an unterminated frame at the end of a stream (a file, a closed port)."""
        if self._in_frame:
            self.stats.frames_interrupted += 1
        self.stats.bytes_skipped += len(self._buf)
        self._buf.clear()
        self._in_frame = False

    def reset(self) -> None:
        """Forget any partial frame (after a reconnect or a long silence)."""
        self._buf.clear()
        self._in_frame = False

    def parse_body(self, body: bytes) -> Frame:
        """Parse the bytes between STX and ETX into a Frame."""
        mode = self.mode or detect_mode(body)
        # A group runs from an LF to the next CR. Splitting on LF (not CR LF) means a CR that
        # noise turned into another byte costs only the group it ended: the next LF still
        # starts a fresh group.
        pieces = body.split(b"\n")
        head = pieces.pop(0)
        table = self._cache.tables[mode]
        results = list(map(table.get, pieces))  # the memo lookup, at C speed
        if None in results:
            miss = self._cache.miss
            results = [
                miss(p, mode) if r is None else r for p, r in zip(pieces, results, strict=True)
            ]
        groups: dict[str, Group] = {r.label: r for r in results if r.__class__ is Group}
        invalid = results.count(_INVALID)
        malformed = results.count(_MALFORMED)
        valid = len(results) - invalid - malformed
        rejected: tuple[bytes, ...] = ()
        if invalid or malformed or head:
            rejected = tuple(
                p for p, r in zip(pieces, results, strict=True) if r.__class__ is not Group
            )
            if head:  # bytes between STX and the first LF
                malformed += 1
                rejected = (head, *rejected)
        stats = self.stats
        stats.frames += 1
        stats.groups_valid += valid
        stats.groups_invalid += invalid
        stats.groups_malformed += malformed
        if not invalid and not malformed:
            stats.frames_valid += 1
        return Frame(mode, groups, invalid, malformed, rejected)


def encode_group(label: str, value: str, mode: Mode, horodate: str | None = None) -> bytes:
    """Wire bytes of one group (LF content CR) with its checksum: for simulators and tests."""
    sep = b" " if mode is Mode.HISTORIQUE else b"\t"
    parts = [label.encode("latin-1")]
    if horodate is not None:
        if mode is Mode.HISTORIQUE:
            raise ValueError("historique groups have no horodate")
        parts.append(horodate.encode("latin-1"))
    parts.append(value.encode("latin-1"))
    span = sep.join(parts)
    if mode is Mode.STANDARD:
        span += sep
    cs = bytes([checksum(span)])
    content = span + cs if mode is Mode.STANDARD else span + sep + cs
    return b"\n" + content + b"\r"


def encode_frame(groups: list[bytes]) -> bytes:
    """Wire bytes of a frame from encoded groups."""
    return b"\x02" + b"".join(groups) + b"\x03"

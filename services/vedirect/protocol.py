"""Victron VE.Direct text protocol: bytes in, checksummed blocks and merged readings out; no I/O.

A block is ``\\r\\n<label>\\t<value>`` fields ending with ``\\r\\nChecksum\\t`` and one raw
byte that makes the block's bytes sum to 0 mod 256. That byte can be anything (TAB, CR, LF,
``:``). Asynchronous HEX messages (``:`` ... ``\\n``) may come between blocks or inside one
(even inside a field); they are skipped and not summed, except a ``:`` that is a checksum byte.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass

BLOCK_START = b"\r\n"
CHECKSUM_LABEL = b"Checksum\t"
# Where a reading starts inside a failed span: a block whose end was lost on the line runs
# into the next one, which is found again from its PID field (devices with no PID, the old
# BMV-60x, only lose that next block, they never mix).
HEAD = b"\r\nPID\t"
_TRAILER = len(b"\r\nChecksum\t") + 1  # bytes after the last field
# The whitepaper says 18 fields of at most 9 + 33 bytes; real devices send more fields.
# Anything without a Checksum label within 1 kB is noise or a lost block end.
MAX_BLOCK_LEN = 1024
MAX_HEX_LEN = 128  # the longest real HEX messages are ~80 bytes
SILENCE_RESET_S = 0.5  # a block takes < 0.2 s at 19200 bd: a gap this long inside one cuts it

Fields = dict[str, str]


@dataclass(slots=True)
class DecoderStats:
    """Counters the service publishes as diagnostics."""

    blocks_valid: int = 0
    blocks_invalid: int = 0  # checksum failed, or too long without a Checksum field
    hex_messages: int = 0
    readings: int = 0
    bytes_skipped: int = 0  # bytes outside any block (lead, noise)
    resets: int = 0  # partial blocks dropped after silence


def _byte_sum_ok(block: bytes) -> bool:
    """Bytes sum to 0 mod 256. adler32's low half is 1 + the byte sum up to 256 bytes."""
    if len(block) <= 256:
        return (zlib.adler32(block) - 1) & 0xFF == 0
    return sum(block) & 0xFF == 0


def strip_hex(block: bytes) -> tuple[bytes, int]:
    """The block without its HEX messages (the final checksum byte is never one), and count."""
    body, last = block[:-1], block[-1:]
    parts = []
    count = 0
    pos = 0
    while (colon := body.find(b":", pos)) >= 0:
        end = body.find(b"\n", colon)
        if end < 0:  # unterminated: the rest is not block data either
            end = len(body) - 1
        parts.append(body[pos:colon])
        count += 1
        pos = end + 1
    parts.append(body[pos:])
    return b"".join(parts) + last, count


def _checked(block: bytes) -> Fields | None:
    """Fields of a HEX-free block when its checksum and its shape are right, else None."""
    return parse_fields(block) if _byte_sum_ok(block) else None


_PRINTABLE = bytes(range(0x20, 0x7F)) + b"\t\r\n"


def parse_fields(block: bytes) -> Fields | None:
    """Fields of a checksum-valid, HEX-free block (Checksum itself left out).

    None when the block is not shaped like fields (one TAB per line, printable ASCII): a
    checksum of 1 in 256 can be fooled when noise adds or removes a ':' or an LF around a
    HEX message, and such a block must not become a reading.
    """
    inner = block[2:-_TRAILER]
    if not inner:
        return {}
    lines = inner.count(b"\r\n") + 1
    if (
        inner.count(b"\t") != lines
        or inner.count(b"\r") != lines - 1
        or inner.count(b"\n") != lines - 1
        or inner.translate(None, _PRINTABLE)
    ):
        return None
    fields: Fields = {}
    for line in inner.split(b"\r\n"):
        label, _, value = line.partition(b"\t")
        if not label:
            return None
        fields[label.decode("ascii")] = value.decode("ascii")
    if len(fields) != lines:
        return None  # a label twice: two blocks run together whose errors cancelled out
    return fields


class Decoder:
    """Incremental VE.Direct decoder for one port: ``feed`` bytes, get merged readings.

    A device's reading may span several blocks (BMV main + history, SmartSolar's two
    halves). Blocks are merged until a block carrying ``PID`` or ``V`` starts the next
    reading. Once a full cycle has been seen, a reading is emitted as soon as its last block
    arrives. A block that fails its checksum (or is cut off, by silence or by the end of
    the stream) ends the reading being assembled: its valid blocks go out without the bad
    one, and nothing after it joins them, so no reading mixes blocks around a bad one and a
    valid block is never lost for its neighbour's fault. A block that starts no reading
    and follows no valid start (the history block of a bad main block) is dropped: it
    names no device.
    """

    def __init__(self) -> None:
        self.stats = DecoderStats()
        self._buf = bytearray()
        self._record: Fields = {}
        self._record_labels: set[str] = set()
        self._cycle: frozenset[str] | None = None  # labels of a complete reading
        self._last_feed: float | None = None

    def feed(self, data: bytes, now: float | None = None) -> Iterator[Fields]:
        """Consume bytes (``now``: a monotonic time, to reset after silence)."""
        if now is not None:
            if self._last_feed is not None and now - self._last_feed > SILENCE_RESET_S:
                yield from self.silence()
            self._last_feed = now
        buf = self._buf
        buf += data
        pos = 0
        stats = self.stats
        while True:
            start = buf.find(BLOCK_START, pos)
            if start < 0:
                keep = len(buf) - 1 if buf.endswith(b"\r") else len(buf)
                colon = buf.rfind(b":", pos)
                if colon >= 0 and buf.find(b"\n", colon) < 0 and len(buf) - colon < MAX_HEX_LEN:
                    keep = colon  # a HEX message still arriving: count it when it ends
                self._count_gap(buf, pos, keep)
                pos = keep
                break
            mark = buf.find(CHECKSUM_LABEL, start)
            if mark < 0 or mark + len(CHECKSUM_LABEL) >= len(buf):
                if len(buf) - start > MAX_BLOCK_LEN:  # no end in sight: noise
                    stats.blocks_invalid += 1
                    self._count_gap(buf, pos, start + 2)
                    pos = start + 2
                    yield from self._flush()
                    continue
                self._count_gap(buf, pos, start)
                pos = start
                break
            end = mark + len(CHECKSUM_LABEL) + 1
            self._count_gap(buf, pos, start)
            pos = end
            if end - start > MAX_BLOCK_LEN:
                stats.blocks_invalid += 1
                yield from self._flush()
                continue
            valid, readings = self._block(bytes(buf[start:end]))
            yield from readings
            if not valid and buf[end - 1] == 0x0D:
                # A block that lost its checksum byte on the line takes the CR of the next
                # block's CR LF for one: give it back, so that block is found.
                pos = end - 1
        del buf[:pos]

    def _block(self, block: bytes) -> tuple[bool, list[Fields]]:
        """Check one block (from its CR LF through the checksum byte); merge it if valid."""
        if b":" in block[:-1]:
            block, hexes = strip_hex(block)
            self.stats.hex_messages += hexes
        fields = _checked(block)
        if fields is not None:
            self.stats.blocks_valid += 1
            return True, self._add(fields)
        self.stats.blocks_invalid += 1
        out = self._flush()  # what came before goes out alone; nothing after joins it
        # A block whose end was lost ran into the next one: that block is valid on its own.
        head = block.find(HEAD, 2)
        while head >= 0:
            fields = _checked(block[head:])
            if fields is not None:
                self.stats.blocks_valid += 1
                out += self._add(fields)
                break
            head = block.find(HEAD, head + 2)
        return False, out

    def _count_gap(self, buf: bytearray, start: int, end: int) -> None:
        """Bytes between blocks: count HEX messages there, the rest is skipped noise."""
        if end <= start:
            return
        gap = bytes(buf[start:end])
        hex_bytes = 0
        pos = 0
        while (colon := gap.find(b":", pos)) >= 0:
            stop = gap.find(b"\n", colon)
            if stop < 0:
                break
            self.stats.hex_messages += 1
            hex_bytes += stop + 1 - colon
            pos = stop + 1
        self.stats.bytes_skipped += end - start - hex_bytes

    def _add(self, fields: Fields) -> list[Fields]:
        """Merge a valid block; return the readings it completes (zero, one or two)."""
        out = []
        if "PID" in fields or "V" in fields:
            if self._record:
                # A record still open at the next start was not complete by the known cycle
                # (or no cycle is known yet): the device's cycle is what we saw.
                self._cycle = frozenset(self._record_labels)
                out.append(self._emit())
        elif not self._record:
            # The tail of a reading whose start we missed, or a block beyond the cycle we
            # learnt (a device that skipped a history block once): learn the cycle again.
            self._cycle = None
            return out
        self._record.update(fields)
        self._record_labels.update(fields)
        if self._cycle is not None and self._record_labels >= self._cycle:
            out.append(self._emit())
        return out

    def _flush(self) -> list[Fields]:
        """The reading being assembled ends here (the next block is bad or cut off): its
        valid blocks go out as they are. The cycle stays: the device did not change."""
        return [self._emit()] if self._record else []

    def _emit(self) -> Fields:
        record = self._record
        self._drop_record()
        self.stats.readings += 1
        return record

    def _drop_record(self) -> None:
        self._record = {}
        self._record_labels = set()

    def silence(self) -> list[Fields]:
        """The line went quiet: a partial block will never complete; returns the readings
        that this ends.

        Devices pause about a second between blocks, so a quiet line with an empty buffer is
        normal and the reading being assembled stays; a cut block ends it (its valid blocks
        go out without the cut one).
        """
        out = []
        if self._buf.strip():
            self.stats.resets += 1
            out = self._flush()
        self.stats.bytes_skipped += len(self._buf)
        self._buf.clear()
        return out

    def finish(self) -> Iterator[Fields]:
        """End of a stream (a file): the reading in progress, as far as it got."""
        yield from self.silence()
        yield from self._flush()

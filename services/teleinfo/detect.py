"""TIC mode auto-detection: at the wrong speed a Linky yields only garbage, never a group
with a valid checksum, so two valid groups of one mode settle both the speed and the mode."""

from __future__ import annotations

from services.teleinfo.protocol import Group, Mode, parse_group

MAX_BUFFER = 4096


class ModeDetector:
    """Feed bytes read at one speed; ``feed`` returns the mode once it is certain."""

    def __init__(self, needed: int = 2) -> None:
        self.needed = needed
        self.buffer = bytearray()
        self._checked = 0  # bytes of buffer already examined

    def feed(self, data: bytes) -> Mode | None:
        """Add bytes; the mode when ``needed`` valid groups of one mode were seen."""
        self.buffer += data
        if len(self.buffer) > MAX_BUFFER:
            del self.buffer[: len(self.buffer) - MAX_BUFFER]
            self._checked = 0
        text = bytes(self.buffer)
        counts = dict.fromkeys(Mode, 0)
        # Every complete piece between two LFs is a candidate group (CR included).
        for piece in text.split(b"\n")[1:-1]:
            for mode in Mode:
                if isinstance(parse_group(piece, mode), Group):
                    counts[mode] += 1
                    if counts[mode] >= self.needed:
                        return mode
        return None

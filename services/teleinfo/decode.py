"""`enerbox decode teleinfo FILE`: a raw capture to JSON lines, for users and bug reports."""

from __future__ import annotations

import json
from typing import IO, Any

from services.teleinfo.fields import normalize
from services.teleinfo.protocol import Decoder, Mode

CHUNK = 65536


def decode_stream(source: IO[bytes], out: IO[str], mode: Mode | None = None) -> dict[str, Any]:
    """Write one JSON line per reading; return the summary counters."""
    decoder = Decoder(mode)
    readings = 0
    while chunk := source.read(CHUNK):
        for frame in decoder.feed(chunk):
            reading = normalize(frame)
            if reading:
                readings += 1
                out.write(json.dumps(reading, ensure_ascii=False) + "\n")
    decoder.finish()
    s = decoder.stats
    return {
        "readings": readings,
        "frames": s.frames,
        "groups_valid": s.groups_valid,
        "groups_invalid": s.groups_invalid,
        "groups_malformed": s.groups_malformed,
        "frames_valid": s.frames_valid,
        "frames_interrupted": s.frames_interrupted,
        "bytes_skipped": s.bytes_skipped,
    }

"""`enerbox decode vedirect FILE`: a raw capture to JSON lines."""

from __future__ import annotations

import json
from typing import IO, Any

from services.vedirect.fields import normalize
from services.vedirect.protocol import Decoder

CHUNK = 65536


def decode_stream(source: IO[bytes], out: IO[str]) -> dict[str, Any]:
    """Write one JSON line per reading; return the summary counters."""
    decoder = Decoder()
    readings = 0

    def emit(raw: dict[str, str]) -> None:
        nonlocal readings
        readings += 1
        out.write(json.dumps(normalize(raw), ensure_ascii=False) + "\n")

    while chunk := source.read(CHUNK):
        for raw in decoder.feed(chunk):
            emit(raw)
    for raw in decoder.finish():
        emit(raw)
    s = decoder.stats
    return {
        "readings": readings,
        "blocks_valid": s.blocks_valid,
        "blocks_invalid": s.blocks_invalid,
        "hex_messages": s.hex_messages,
        "bytes_skipped": s.bytes_skipped,
    }

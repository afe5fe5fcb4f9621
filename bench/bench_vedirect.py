"""VE.Direct decode throughput (blocks/s, one core, full decode) and the service's RSS."""

from __future__ import annotations

import gc
import time

from bench.bench_teleinfo import NO_SHARED, SHARED
from services.vedirect.fields import normalize
from services.vedirect.protocol import Decoder

CAPTURES = [
    ("BMV-700 (main + history blocks)", "bmv700_karioja_bvm702.dump"),
    ("BlueSolar MPPT 75/15 (HEX messages)", "mppt_bluesolar_75-15_fw150_velog-001.log"),
    ("Phoenix inverter (TAB/CR/LF checksums)", "phoenix_inverter_12V_1200VA_120V_velog.log"),
]


def blocks_per_s(data: bytes, seconds: float = 2.0) -> float:
    """Decode the capture repeatedly: blocks, checksums, merging and normalized fields."""
    decoder = Decoder()
    gc.disable()
    start = time.perf_counter()
    elapsed = 0.0
    blocks = 0
    while elapsed < seconds:
        before = decoder.stats.blocks_valid
        for raw in decoder.feed(data):
            normalize(raw)
        blocks += decoder.stats.blocks_valid - before
        elapsed = time.perf_counter() - start
    gc.enable()
    return blocks / elapsed


def main() -> None:
    """Print the figures."""
    print("VE.Direct full decode (blocks + checksums + merge + normalized fields), one core:")
    if SHARED is None:
        print(f"  (skipped: {NO_SHARED})")
        return
    for label, name in CAPTURES:
        path = SHARED / "fixtures" / "vedirect" / name
        if not path.exists():
            print(f"  (skipped {label}: {path} not found)")
            continue
        print(f"  {blocks_per_s(path.read_bytes()):>10,.0f} blocks/s  {label}")

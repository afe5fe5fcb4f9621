"""TIC decode throughput (frames/s, one core, full decode) and the teleinfo service's RSS."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from pathlib import Path

from services.teleinfo.fields import normalize
from services.teleinfo.protocol import Decoder, GroupCache, Mode


def _shared_dir() -> Path | None:
    """$ENERBOX_SHARED, else ../shared next to the checkout (captures: test data only)."""
    env = os.environ.get("ENERBOX_SHARED")
    shared = Path(env) if env else Path(__file__).resolve().parents[2] / "shared"
    return shared if (shared / "fixtures").is_dir() else None


SHARED = _shared_dir()
NO_SHARED = "../shared/fixtures not found next to the checkout (set ENERBOX_SHARED)"


def _frames_per_s(stream: bytes, cache: Callable[[], GroupCache], mode: Mode | None,
                  seconds: float = 2.0) -> float:
    """Decode the stream repeatedly (framing, checksums, normalized fields) for ~seconds."""
    decoder = Decoder(mode, cache())
    done = 0
    gc.disable()
    start = time.perf_counter()
    elapsed = 0.0
    while elapsed < seconds:
        for frame in decoder.feed(stream):
            normalize(frame)
            done += 1
        elapsed = time.perf_counter() - start
    gc.enable()
    return done / elapsed


def _generated(mode: Mode, phases: int, frames: int) -> bytes:
    """A simulated stream where power, currents and indexes change every frame."""
    from datetime import datetime

    from services.sim.tic import Tariff, TicMeterSim

    sim = TicMeterSim(mode, phases=phases, tariff=Tariff.TEMPO)
    t0 = datetime(2026, 1, 15, 18, 0)
    return b"".join(sim.frame_at(i * 1.5, t0) for i in range(frames))


def decode_figures() -> list[tuple[str, float]]:
    """(label, frames/s) for each stream and cache setting."""
    rows: list[tuple[str, float]] = []
    captures = [
        ("historique 1-phase Tempo capture", "hist_mono_tempo_pyteleinfo.bin", Mode.HISTORIQUE),
        ("standard 3-phase Tempo capture (noisy)", "std_tri_tempo_noisy_teleinfo-nom.bin",
         Mode.STANDARD),
    ]
    if SHARED is None:
        print(f"  (captures skipped: {NO_SHARED})")
        captures = []
    for label, name, _mode in captures:
        path = (SHARED or Path()) / "fixtures" / "teleinfo" / name
        if not path.exists():
            print(f"  (skipped {label}: {path} not found)")
            continue
        data = path.read_bytes()
        for cache_label, make in (("memo", GroupCache), ("no memo", lambda: GroupCache(0))):
            rows.append((f"{label}, {cache_label}", _frames_per_s(data, make, None)))
    for mode, phases in ((Mode.HISTORIQUE, 1), (Mode.STANDARD, 1), (Mode.STANDARD, 3)):
        data = _generated(mode, phases, 400)  # 400 distinct frames: values change each time
        label = f"{mode.value} {phases}-phase simulated, values change every frame"
        for cache_label, make in (("memo", GroupCache), ("no memo", lambda: GroupCache(0))):
            rows.append((f"{label}, {cache_label}", _frames_per_s(data, make, mode)))
    return rows


def main() -> None:
    """Print the figures."""
    print("TIC full decode (framing + checksums + normalized fields), one core:")
    for label, rate in decode_figures():
        print(f"  {rate:>10,.0f} frames/s  {label}")

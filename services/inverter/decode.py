"""`enerbox decode sunspec FILE.json`: a register image ({"base": 40000, "registers": [uint16
...]}: holding registers from ``base`` on, as DESIGN.md's command line section says) through
the same discovery, request plan and decoding the service uses, one JSON object per device
group."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from services.inverter.sunspec import (
    DEFAULT_BASES,
    MAX_REQUEST,
    DiscoveryError,
    decode_model,
    discover,
    normalize,
    requests_for,
)


class ImageError(Exception):
    """The file is not a readable register image."""


class ImageReader:
    """A register image served as a device would: one request of at most 125 registers,
    an exception for any address outside the image."""

    def __init__(self, base: int, registers: Sequence[int]) -> None:
        self.base = base
        self.registers = list(registers)

    def __call__(self, address: int, count: int) -> Sequence[int]:
        start = address - self.base
        if count < 1 or count > MAX_REQUEST or start < 0 or start + count > len(self.registers):
            raise IndexError(f"illegal data address {address} (+{count})")
        return self.registers[start:start + count]


def load_image(path: str | Path) -> ImageReader:
    """Read and check the image file; ImageError says what is wrong with it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ImageError(f"cannot read {path}: {exc.strerror}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImageError(f"{path} is not JSON: {exc}") from exc
    registers = data.get("registers") if isinstance(data, dict) else None
    if not isinstance(registers, list) or not registers:
        raise ImageError(f"{path} has no \"registers\" list")
    if not all(isinstance(r, int) and 0 <= r <= 0xFFFF for r in registers):
        raise ImageError(f"{path}: \"registers\" must hold 16-bit unsigned integers")
    base = data.get("base", 0)
    if not isinstance(base, int) or not 0 <= base <= 0xFFFF:
        raise ImageError(f"{path}: \"base\" must be a register number")
    return ImageReader(base, registers)


def decode_file(path: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The device groups (``kind`` + normalized fields) and the summary
    ``{"models": [ids in chain order], "devices": N}``. Raises ImageError."""
    reader = load_image(path)
    bases = tuple(dict.fromkeys((reader.base, *DEFAULT_BASES)))
    try:
        chain = discover(reader, bases)
    except DiscoveryError as exc:
        raise ImageError(f"{path}: {exc}") from exc
    models: list[tuple[int, dict[str, Any]]] = []
    for model in chain.models:
        try:
            regs = [r for address, count in requests_for(model) for r in reader(address, count)]
        except IndexError:  # the image ends inside this model: decode what it holds
            break
        decoded = decode_model(model.model_id, regs)
        if decoded is not None:
            models.append((model.model_id, decoded))
    devices = [{"kind": d.kind, **d.fields} for d in normalize(models)]
    return devices, {"models": chain.ids, "devices": len(devices)}


def main(path: str, out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    """The command: JSON lines on ``out``, the summary on ``err``; 2 for a bad file."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        devices, summary = decode_file(path)
    except ImageError as exc:
        print(f"enerbox decode sunspec: {exc}", file=err)
        return 2
    for device in devices:
        out.write(json.dumps(device, ensure_ascii=False) + "\n")
    out.flush()
    print(json.dumps(summary), file=err)
    return 0

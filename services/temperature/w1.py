"""The kernel's 1-Wire sysfs tree (w1-gpio + w1_therm): list probes, read them.

``ROOT`` is /sys/bus/w1/devices on a Pi: one ``<family>-<serial>`` link per slave, into its
bus master's folder (``w1_bus_master1``). A probe's ``w1_slave`` gives two lines::

    72 01 4b 46 7f ff 0c 10 c6 : crc=c6 YES
    72 01 4b 46 7f ff 0c 10 c6 t=23125

Reading it starts a conversion and blocks ~750 ms (12 bit). Kernels since 5.9 add a
``therm_bulk_read`` file on the master: writing ``trigger`` starts one conversion on every
probe of that bus at once, and the next read of each probe's ``w1_slave`` or ``temperature``
then returns the converted value from the probe's RAM without converting again
(Documentation/w1/slaves/w1_therm.rst). We read ``w1_slave`` in both cases: unlike
``temperature`` it carries the scratchpad (an all-zero read passes the CRC) and the CRC verdict.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_ROOT = Path("/sys/bus/w1/devices")
# DS18S20, DS1822, DS18B20, DS1825/MAX31850: the w1_therm families with a t= line.
FAMILIES = {"10": "DS18S20", "22": "DS1822", "28": "DS18B20", "3b": "DS1825"}
_ADDRESS = re.compile(r"^([0-9a-f]{2})-[0-9a-f]{12}$")
_CRC = re.compile(r"crc=([0-9a-f]{2}) (YES|NO)\s*$")
_T = re.compile(r"t=(-?\d+)\s*$")


class ReadError(Exception):
    """A probe's file could not be read or understood (gone, EIO, truncated)."""

    def __init__(self, message: str, *, gone: bool = False) -> None:
        super().__init__(message)
        self.gone = gone  # the probe's folder vanished: unplugged


@dataclass(frozen=True, slots=True)
class Probe:
    """One temperature probe on the bus."""

    address: str  # "28-0000075a3f01"
    path: Path  # its folder (through the root's link)
    master: Path | None  # its bus master's folder (for therm_bulk_read)

    @property
    def model(self) -> str:
        """The chip, from the family code."""
        return FAMILIES.get(self.address[:2], "1-Wire thermometer")


@dataclass(frozen=True, slots=True)
class RawRead:
    """What one read of w1_slave said, before any judgement."""

    crc_ok: bool
    scratchpad: bytes
    milli_c: int


def family(address: str) -> str | None:
    """The family code of a temperature probe's address, else None (ghosts, other chips)."""
    match = _ADDRESS.match(address.lower())
    if match is None or match.group(1) not in FAMILIES:
        return None  # family 00 "ghosts" that w1-gpio shows on a floating line land here
    return match.group(1)


def list_probes(root: Path) -> list[Probe]:
    """The temperature probes under ``root``, sorted by address (none when it is absent:
    w1-gpio not loaded yet)."""
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return []
    probes = []
    for entry in entries:
        if family(entry.name) is None or not (entry / "w1_slave").exists():
            continue
        try:
            master: Path | None = entry.resolve(strict=True).parent
        except OSError:
            continue  # unplugged while we looked
        if master is not None and not master.name.startswith("w1_bus_master"):
            master = None
        probes.append(Probe(entry.name.lower(), entry, master))
    return probes


def parse_w1_slave(text: str) -> RawRead:
    """The two lines of w1_slave; ReadError when they are not both there."""
    lines = text.strip().splitlines()
    if len(lines) != 2:
        raise ReadError(f"w1_slave has {len(lines)} lines, not 2")
    crc, temp = _CRC.search(lines[0]), _T.search(lines[1])
    if crc is None or temp is None:
        raise ReadError(f"w1_slave not understood: {text.strip()!r}")
    hexes = lines[0].split(":", 1)[0].split()
    try:
        pad = bytes(int(h, 16) for h in hexes)
    except ValueError as exc:
        raise ReadError(f"w1_slave scratchpad not hex: {lines[0]!r}") from exc
    return RawRead(crc_ok=crc.group(2) == "YES", scratchpad=pad, milli_c=int(temp.group(1)))


def read_probe(probe: Probe) -> RawRead:
    """Read (and, unless a bulk conversion is pending, convert) one probe."""
    try:
        text = (probe.path / "w1_slave").read_text(encoding="ascii", errors="replace")
    except FileNotFoundError as exc:
        raise ReadError(f"{probe.address} gone", gone=True) from exc
    except OSError as exc:  # EIO: the bus did not answer
        raise ReadError(f"{probe.address}: {exc.strerror or exc}") from exc
    return parse_w1_slave(text)


def has_bulk(master: Path) -> bool:
    """The master offers therm_bulk_read (kernel >= 5.9 with a probe that supports it)."""
    return (master / "therm_bulk_read").exists()


def trigger_bulk(master: Path) -> None:
    """Start one conversion on every probe of this bus (OSError when it cannot: a
    read-only mount, an old kernel)."""
    with (master / "therm_bulk_read").open("w", encoding="ascii") as f:
        f.write("trigger\n")

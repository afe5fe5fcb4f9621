"""A fake smbus2.SMBus holding PCF8574 and MCP23017 chips, optionally shared through a file.

With a state file every call takes a lock file, re-reads the chips and saves them after a
change, so a test (or another process) can watch the board and power-cycle it. Every write an
instance makes is recorded in ``writes``, so a test can check what was ever on the wire.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import tempfile
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from smbus2 import SMBus

from services.core.store import load_json
from services.relays.drivers.base import SMBusLike

PCF8574 = "pcf8574"
MCP23017 = "mcp23017"
# MCP23017 registers at IOCON.BANK=0 (BANK=1 is not simulated).
IODIRA, GPIOA, OLATA = 0x00, 0x12, 0x14
MCP_REGISTERS = 0x16


def power_up(kind: str) -> list[int]:
    """A chip's registers at power-up: PCF8574 pins high; MCP23017 all inputs, latch 0."""
    if kind == PCF8574:
        return [0xFF]
    if kind == MCP23017:
        return [0xFF, 0xFF] + [0x00] * (MCP_REGISTERS - 2)
    raise ValueError(f"unknown chip kind {kind!r} (expected {PCF8574!r} or {MCP23017!r})")


@dataclass(frozen=True)
class Write:
    """One write as it reached a chip: a PCF8574 byte has no register (None)."""

    address: int
    register: int | None
    value: int


@dataclass
class _Chip:
    kind: str
    regs: list[int]


class FakeSMBus:
    """smbus2.SMBus's byte methods over simulated chips; unknown addresses NAK like the kernel."""

    def __init__(self, state_file: Path | None = None) -> None:
        self.state_file = state_file
        self.chips: dict[int, _Chip] = {}
        self._failures = 0
        self._closed = False
        self._dirty = False
        self._lock = threading.Lock()
        self.writes: deque[Write] = deque(maxlen=100_000)
        with self._shared():
            pass

    # -- test controls -----------------------------------------------------------------------

    def add(self, address: int, kind: str) -> None:
        """Put a chip at ``address`` at power-up; a chip of that kind already there is kept."""
        with self._shared():
            chip = self.chips.get(address)
            if chip is not None and chip.kind != kind:
                raise ValueError(f"0x{address:02x} already holds a {chip.kind}, not a {kind}")
            if chip is None:
                self.chips[address] = _Chip(kind, power_up(kind))
                self._dirty = True

    def add_pcf8574(self, address: int) -> None:
        """Put a PCF8574 at ``address``."""
        self.add(address, PCF8574)

    def add_mcp23017(self, address: int) -> None:
        """Put an MCP23017 at ``address``."""
        self.add(address, MCP23017)

    def power_cycle(self, address: int) -> None:
        """Reset the chip at ``address`` to its power-up registers."""
        with self._shared():
            chip = self.chips[address]
            chip.regs = power_up(chip.kind)
            self._dirty = True

    def fail_next(self, n: int) -> None:
        """Make the next ``n`` bus calls raise OSError (EIO), like a flaky bus."""
        self._failures = n

    # -- smbus2 methods ----------------------------------------------------------------------

    def read_byte(self, i2c_addr: int, force: bool | None = None) -> int:
        """Receive one byte: a PCF8574's pin levels."""
        with self._shared():
            return self._pcf(i2c_addr).regs[0]

    def write_byte(self, i2c_addr: int, value: int, force: bool | None = None) -> None:
        """Send one byte: a PCF8574's pins."""
        with self._shared():
            self._pcf(i2c_addr).regs[0] = value & 0xFF
            self.writes.append(Write(i2c_addr, None, value & 0xFF))
            self._dirty = True

    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        """Read an MCP23017 register (GPIOx gives the latch on output pins, 0 on inputs)."""
        with self._shared():
            chip = self._chip(i2c_addr)
            if chip.kind == PCF8574:
                return self._pcf_register_quirk(chip, register)
            regs = chip.regs
            _check_register(register)
            if register in (GPIOA, GPIOA + 1):
                port = register - GPIOA
                # Nothing drives the input pins in the fake, so they read low.
                return regs[OLATA + port] & ~regs[IODIRA + port] & 0xFF
            return regs[register]

    def write_byte_data(
        self, i2c_addr: int, register: int, value: int, force: bool | None = None
    ) -> None:
        """Write an MCP23017 register (writing GPIOx writes OLATx, as the datasheet says)."""
        with self._shared():
            chip = self._chip(i2c_addr)
            self._dirty = True
            self.writes.append(Write(i2c_addr, register, value & 0xFF))
            if chip.kind == PCF8574:
                self._pcf_register_quirk(chip, register)
                chip.regs[0] = value & 0xFF
                return
            _check_register(register)
            if register in (GPIOA, GPIOA + 1):
                register += OLATA - GPIOA
            chip.regs[register] = value & 0xFF

    def close(self) -> None:
        """Later calls fail with EBADF, as on a closed smbus2.SMBus."""
        self._closed = True

    # -- internals ---------------------------------------------------------------------------

    def _chip(self, address: int) -> _Chip:
        if self._closed:
            raise OSError(errno.EBADF, "Bad file descriptor")
        if self._failures > 0:
            self._failures -= 1
            raise OSError(errno.EIO, "Input/output error")
        chip = self.chips.get(address)
        if chip is None:
            raise OSError(errno.EREMOTEIO, "Remote I/O error")
        return chip

    def _pcf(self, address: int) -> _Chip:
        chip = self._chip(address)
        if chip.kind != PCF8574:
            # Register-pointer access on an MCP23017 is not simulated; no driver uses it.
            raise NotImplementedError("plain byte read/write on an MCP23017")
        return chip

    def _pcf_register_quirk(self, chip: _Chip, register: int) -> int:
        # A PCF8574 has no registers: the SMBus "register" byte is written to the pins.
        chip.regs[0] = register & 0xFF
        self._dirty = True
        return chip.regs[0]

    @contextmanager
    def _shared(self) -> Iterator[None]:
        """One call: lock, load the file, and save it if the call changed a chip."""
        with self._lock:
            if self.state_file is None:
                yield
                return
            lock_path = self.state_file.with_name(self.state_file.name + ".lock")
            with lock_path.open("a") as lock:
                # The lock spans load-change-save, so two processes never lose a write.
                fcntl.flock(lock, fcntl.LOCK_EX)
                self._load()
                self._dirty = False
                yield
                if self._dirty:
                    self._save()

    def _load(self) -> None:
        assert self.state_file is not None
        data = load_json(self.state_file)
        if not isinstance(data, dict):
            return
        self.chips = {int(a, 0): _Chip(c["kind"], list(c["regs"])) for a, c in data.items()}

    def _save(self) -> None:
        assert self.state_file is not None
        data = {f"0x{a:02x}": {"kind": c.kind, "regs": c.regs} for a, c in self.chips.items()}
        fd, tmp = tempfile.mkstemp(dir=self.state_file.parent, prefix=self.state_file.name)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
        # Readers that skip the lock still never see a half-written file.
        Path(tmp).replace(self.state_file)


def _check_register(register: int) -> None:
    if not 0 <= register < MCP_REGISTERS:
        raise ValueError(f"MCP23017 has no register 0x{register:02x} at IOCON.BANK=0")


def open_bus(spec: int | str, chips: Mapping[int, str] | None = None) -> SMBusLike:
    """Open I2C bus ``spec``: N is /dev/i2c-N; "fake:/path.json" is a FakeSMBus on that file.

    ``chips`` (address -> "pcf8574"/"mcp23017") is put on a fake bus if not there yet, and
    ignored for a real bus. "fake:" alone gives an in-memory fake.
    """
    if isinstance(spec, str) and spec.startswith("fake:"):
        path = spec.removeprefix("fake:")
        fake = FakeSMBus(Path(path) if path else None)
        for address, kind in (chips or {}).items():
            fake.add(address, kind)
        return fake
    # smbus2 also takes a device path such as "/dev/i2c-1".
    return SMBus(int(spec) if isinstance(spec, str) and spec.isdigit() else spec)

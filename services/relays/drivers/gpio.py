"""Outputs on the Pi's own GPIO pins, through gpiozero (lgpio on a Pi 5, MockFactory in tests)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# gpiozero ships no type information.
from gpiozero import DigitalOutputDevice, GPIOZeroError  # type: ignore[import-untyped, unused-ignore]

from services.relays.drivers.base import BoardError


class GpioBoard:
    """One DigitalOutputDevice per channel (BCM pin = channel), made at ``configure`` or on
    first use, at its preset level (low when none was given)."""

    def __init__(self, name: str, pin_factory: Any = None) -> None:
        self.name = name
        # None lets gpiozero choose (GPIOZERO_PIN_FACTORY=mock selects its mock pins).
        self._pin_factory = pin_factory
        self._devices: dict[int, Any] = {}
        self._preset: dict[int, bool] = {}

    def _device(self, channel: int) -> Any:
        device = self._devices.get(channel)
        if device is None:
            # Polarity lives in the relay above: here True always means pin high.
            device = DigitalOutputDevice(
                channel, active_high=True, initial_value=self._preset.get(channel, False),
                pin_factory=self._pin_factory,
            )
            self._devices[channel] = device
        return device

    def preset(self, levels: Mapping[int, bool]) -> None:
        """The level each pin is made an output at (an active-low relay's pin comes up high)."""
        self._preset.update(levels)

    def set(self, channel: int, on: bool) -> None:
        """Drive BCM pin ``channel`` high (True) or low."""
        try:
            self._device(channel).value = on
        except (GPIOZeroError, OSError) as exc:
            raise BoardError(f"board {self.name}: set GPIO{channel} failed: {exc}") from exc

    def set_many(self, levels: Mapping[int, bool]) -> None:
        """One pin after the other: each GPIO line is its own write (microseconds apart), so
        a zone on GPIO shows the in-between pattern that briefly; an expander does not."""
        for channel, on in levels.items():
            self.set(channel, on)

    def get(self, channel: int) -> bool:
        """Read the pin level back (``pin.state``, not the device's remembered value)."""
        try:
            pin = self._device(channel).pin
            if pin is None:
                raise BoardError(f"board {self.name}: GPIO{channel} is closed")
            return bool(pin.state)
        except (GPIOZeroError, OSError) as exc:
            raise BoardError(f"board {self.name}: read GPIO{channel} failed: {exc}") from exc

    def configure(self) -> None:
        """Make every preset pin an output at its preset level (the others on first use)."""
        for channel in self._preset:
            try:
                self._device(channel)
            except (GPIOZeroError, OSError) as exc:
                raise BoardError(f"board {self.name}: setup GPIO{channel} failed: {exc}") from exc

    def looks_reset(self) -> bool:
        """GPIO pins do not lose their setup while this process lives."""
        return False

    def close(self) -> None:
        """Release every pin (gpiozero turns a closed pin back into an input)."""
        for device in self._devices.values():
            device.close()
        self._devices.clear()

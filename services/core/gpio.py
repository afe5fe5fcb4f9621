"""GPIO chips found by label: a Pi 5's header is "pinctrl-rp1", a Pi 4's "pinctrl-bcm2711",
and their gpiochip numbers change across kernels; shared by the services that use GPIO lines
(pulses, display) through the PyPI ``gpiod`` 2.x package, imported only where it is used."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

__all__ = ["GpioError", "find_chip", "gpiod_label"]


class GpioError(RuntimeError):
    """The chip or line cannot be found or requested (the message says what to check)."""


def gpiod_label(path: str) -> str:
    """The label of the gpiochip at ``path`` (OSError when it is not one)."""
    import gpiod  # noqa: PLC0415 (only where the hardware is)

    with gpiod.Chip(path) as chip:
        label: str = chip.get_info().label
        return label


def find_chip(chip: str, pattern: str = "/dev/gpiochip*",
              label_of: Callable[[str], str] = gpiod_label) -> str:
    """The character device of ``chip``: a path as is, else the first gpiochip whose label
    is ``chip`` (a Pi 5's header is "pinctrl-rp1", a Pi 4's "pinctrl-bcm2711"; their
    numbers change across kernels, their labels do not). ``pattern`` and ``label_of`` are
    for tests."""
    if "/" in chip:
        return chip
    labels: dict[str, str] = {}
    where = Path(pattern)
    for found in sorted(where.parent.glob(where.name)):
        path = str(found)
        try:
            labels[path] = label_of(path)
        except OSError:
            continue  # not a gpiochip, or no permission: says so below when nothing matches
        if labels[path] == chip:
            return path
    seen = ", ".join(f"{p} ({label})" for p, label in labels.items()) or "none readable"
    raise GpioError(f"no gpiochip labelled {chip!r} among {pattern}: {seen}")

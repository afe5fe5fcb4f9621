"""Configuration section of the temperature service: the 1-Wire tree and its probes."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from services.core.config import Section
from services.core.contract.topics import slug
from services.temperature.w1 import DEFAULT_ROOT, family


class ProbeConfig(Section):
    """A probe given an id and a name (the others are published under their address)."""

    id: str = Field(description="Device id in topics (a slug).", examples=["tank-top"])
    name: str | None = Field(None, description="Display name in Home Assistant.")
    address: str = Field(
        description="The probe's 1-Wire address, as its folder under root is named.",
        examples=["28-0000075a3f01"],
    )

    @field_validator("id")
    @classmethod
    def _id_is_slug(cls, value: str) -> str:
        if value != slug(value):
            raise ValueError(f"must be a slug such as {slug(value)!r}")
        return value

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        value = value.strip().lower()
        if family(value) is None:
            raise ValueError("must be a temperature probe's address such as "
                             "'28-0000075a3f01' (families 10, 22, 28, 3b)")
        return value


class TemperatureConfig(Section):
    """1-Wire DS18B20 temperature probes, read through the kernel's w1 sysfs tree."""

    root: Path = Field(
        DEFAULT_ROOT, description="The w1 devices folder (w1-gpio overlay loaded); a fake "
        "tree's folder in tests and make run."
    )
    interval_s: float = Field(30.0, gt=0, description="How often every probe is read.")
    rescan_s: float = Field(
        300.0, gt=0, description="How often the bus is listed again for probes plugged in "
        "(a probe whose folder vanishes is offline at its next read)."
    )
    max_step_c: float = Field(
        10.0, gt=0, description="A read further than this from the last good value is held "
        "until the next read confirms it (a brown-out reads a wrong value with a good CRC)."
    )
    offline_after_failures: int = Field(
        3, ge=1, description="Read cycles in a row without a good value before a probe is "
        "offline (a probe that vanished from the bus is offline at once)."
    )
    diagnostics_interval_s: float = Field(
        60.0, gt=0, description="How often each probe's counters are published."
    )
    probes: list[ProbeConfig] = Field(
        default_factory=list, description="Names for known probes; probes found and not "
        "listed are published under their address."
    )

    @field_validator("probes")
    @classmethod
    def _unique(cls, probes: list[ProbeConfig]) -> list[ProbeConfig]:
        for what, values in (("id", [p.id for p in probes]),
                             ("address", [p.address for p in probes])):
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"each probe {what} may appear once, repeated: "
                                 f"{', '.join(dupes)}")
        return probes

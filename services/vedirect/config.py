"""Configuration section of the vedirect service."""

from __future__ import annotations

from pydantic import Field, field_validator

from services.core.config import Section
from services.core.contract.topics import slug


class PortConfig(Section):
    """One VE.Direct cable (one Victron device)."""

    port: str = Field(
        description="Serial port of the VE.Direct USB cable: use its /dev/serial/by-id/... path "
        "(ttyUSBn numbers move between boots).",
        examples=["/dev/serial/by-id/usb-VictronEnergy_BV_VE_Direct_cable_VE1SSGXX-if00-port0"],
    )
    id: str | None = Field(
        None,
        description="Device id in topics. Default: the device's serial number as a slug, so "
        "it keeps its identity when plugged into another USB port.",
    )
    name: str | None = Field(None, description="Display name in Home Assistant.")

    @field_validator("id")
    @classmethod
    def _id_is_slug(cls, value: str | None) -> str | None:
        if value is not None and value != slug(value):
            raise ValueError(f"must be a slug such as {slug(value)!r}")
        return value


class VedirectConfig(Section):
    """Victron VE.Direct reader (BMV/SmartShunt, MPPT chargers, Phoenix inverters, chargers)."""

    ports: list[PortConfig] = Field(
        default_factory=list, description="VE.Direct ports to read; none by default."
    )
    min_interval_s: float = Field(
        1.0, ge=0,
        description="Least time between two states of a device; a change of charge state, "
        "error, alarm or relay goes out at once.",
    )
    offline_after_s: float = Field(
        10.0, gt=0, description="A device is 'offline' after this long without a valid reading."
    )
    reconnect_max_s: float = Field(
        30.0, gt=0, description="Longest wait between attempts to reopen a lost port."
    )
    publish_raw: bool = Field(True, description="Publish the device's own labels on .../raw.")
    diagnostics_interval_s: float = Field(
        60.0, gt=0, description="How often the diagnostics counters are published."
    )

    @field_validator("ports")
    @classmethod
    def _unique(cls, ports: list[PortConfig]) -> list[PortConfig]:
        for what, values in (("port", [p.port for p in ports]),
                             ("id", [p.id for p in ports if p.id])):
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"each {what} may appear once, repeated: {', '.join(dupes)}")
        return ports

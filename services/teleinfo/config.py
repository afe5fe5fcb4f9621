"""Configuration section of the teleinfo service."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from services.core.config import Section
from services.core.contract.topics import slug


class MeterConfig(Section):
    """One Linky meter on one serial port."""

    id: str = Field(
        "linky", description="Device id used in topics (a slug: a-z, 0-9, '-', '_').",
        examples=["linky", "linky-production"],
    )
    name: str | None = Field(None, description="Display name in Home Assistant.")
    port: str = Field(
        "/dev/serial/by-id/usb-FTDI_FT230X_Basic_UART_DK0E1234-if00-port0",
        description="Serial port: a /dev/serial/by-id/... path survives USB re-plugging; "
        "/dev/ttyAMA0 for a PiTInfo HAT; pyserial URLs (socket://host:port) work too.",
    )
    mode: Literal["auto", "historique", "standard"] = Field(
        "auto",
        description="TIC mode set on the meter (its display says 'TIC Historique' or 'TIC "
        "Standard'); 'auto' tries both speeds until valid groups come in.",
    )

    @field_validator("id")
    @classmethod
    def _id_is_slug(cls, value: str) -> str:
        if value != slug(value):
            raise ValueError(f"must be a slug such as {slug(value)!r}")
        return value


class TeleinfoConfig(Section):
    """Linky TIC reader."""

    meters: list[MeterConfig] = Field(
        default_factory=lambda: [MeterConfig()], description="Meters to read, one per port."
    )
    offline_after_s: float = Field(
        10.0, gt=0, description="A meter is 'offline' after this long without a valid frame."
    )
    detect_timeout_s: float = Field(
        4.0, gt=0, description="Time spent listening at each speed when mode is 'auto'."
    )
    reconnect_max_s: float = Field(
        30.0, gt=0, description="Longest wait between attempts to reopen a lost port."
    )
    publish_raw: bool = Field(True, description="Publish the meter's own labels on .../raw.")
    diagnostics_interval_s: float = Field(
        60.0, gt=0, description="How often the diagnostics counters are published."
    )

    @field_validator("meters")
    @classmethod
    def _unique_ids(cls, meters: list[MeterConfig]) -> list[MeterConfig]:
        ids = [m.id for m in meters]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"meter ids must be unique, repeated: {', '.join(dupes)}")
        return meters

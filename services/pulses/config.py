"""Configuration section of the pulses service: S0 pulse meters on GPIO lines."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from services.core.config import Section
from services.core.contract.topics import slug


class SimConfig(Section):
    """The simulated meter of `make run` and the tests (source: sim)."""

    power_w: float = Field(
        3000.0, ge=0, description="Power drawn while the followed relay is on (or always, "
        "without follow_relay)."
    )
    follow_relay: str | None = Field(
        None, description="Relay id whose state (<p>/relays/<id>/state, followed over the "
        "service's own MQTT connection) switches the simulated load on and off.",
        examples=["water-heater"],
    )
    width_ms: float = Field(90.0, gt=0, description="Width of a simulated pulse.")
    bounce_ms: float = Field(0.0, ge=0, description="Contact bounce on each edge (0: none).")


class MeterConfig(Section):
    """One S0 pulse meter."""

    id: str = Field(description="Meter id in topics (a slug).", examples=["water-heater"])
    name: str | None = Field(None, description="Display name in Home Assistant.")
    source: Literal["gpiod", "sim", "replay"] = Field(
        "gpiod", description="gpiod: the GPIO line; sim: a simulated meter (see sim); "
        "replay: recorded edges from replay_file."
    )
    chip: str = Field(
        "pinctrl-rp1", description="gpiochip label (pinctrl-rp1 on a Pi 5, pinctrl-bcm2711 "
        "on a Pi 4) or a /dev/gpiochipN path.", examples=["pinctrl-bcm2711"],
    )
    line: int = Field(0, ge=0, description="Line offset on the chip (the BCM GPIO number on "
                      "a Pi's header).", examples=[17])
    bias: Literal["pull-up", "pull-down", "disabled", "as-is"] = Field(
        "pull-up", description="Line bias: an S0 output (open collector) needs a pull-up."
    )
    active_low: bool = Field(
        True, description="An S0 output pulls the line low while a pulse is on."
    )
    debounce_us: int = Field(
        0, ge=0, le=30000, description="Kernel debounce (µs); 0 leaves bounces to the "
        "stable-level filter, which never drops a real edge."
    )
    imp_per_kwh: float = Field(1000.0, gt=0, description="Meter constant (imp/kWh), as "
                               "printed on the meter.")
    max_power_kw: float = Field(
        12.0, gt=0, description="Most the metered circuit can draw: pulses closer than "
        "3600 / (imp_per_kwh × max_power_kw) s are rejected (double triggers)."
    )
    min_pulse_ms: float = Field(30.0, gt=0, description="A pulse counts once the line has "
                                "been active this long (EN 62053-31: at least 30 ms).")
    min_gap_ms: float = Field(30.0, gt=0, description="... after being inactive this long.")
    zero_after_s: float = Field(
        300.0, gt=0, description="Power reads 0 when no pulse came for this long (before, it "
        "is bounded by one pulse's energy over the time since the last)."
    )
    stuck_after_s: float = Field(
        2.0, gt=0, description="A line active for longer is stuck (counted once; the time "
        "beyond is reported in diagnostics as stuck_s)."
    )
    save_every_s: float = Field(
        60.0, gt=0, description="How often the index is saved (and at a clean stop): a "
        "power cut loses at most this much of the count."
    )
    initial_index_wh: float = Field(
        0.0, ge=0, description="The meter's index when first counted (later: the saved one, "
        "or a calibration on <p>/pulses/<id>/set)."
    )
    replay_file: Path | None = Field(
        None, description="JSON lines of edges {\"ts_ns\", \"active\", \"seq\"} (source: "
        "replay)."
    )
    sim: SimConfig = Field(default_factory=SimConfig, description="The simulated meter.")

    @field_validator("id")
    @classmethod
    def _id_is_slug(cls, value: str) -> str:
        if value != slug(value):
            raise ValueError(f"must be a slug such as {slug(value)!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MeterConfig:
        if self.source == "replay" and self.replay_file is None:
            raise ValueError("replay_file is required with source: replay")
        return self

    @property
    def wh_per_pulse(self) -> float:
        """Energy of one pulse."""
        return 1000.0 / self.imp_per_kwh


class PulsesConfig(Section):
    """S0 pulse meters (MID DIN-rail sub-meters) on the Pi's GPIO."""

    meters: list[MeterConfig] = Field(
        default_factory=list, description="Meters to count, one reader thread each; none by "
        "default."
    )
    publish_interval_s: float = Field(
        1.0, ge=1.0, description="State and fields at most this often (and at least every "
        "30 s)."
    )
    diagnostics_interval_s: float = Field(
        60.0, gt=0, description="How often the diagnostics counters are published."
    )

    @field_validator("meters")
    @classmethod
    def _unique(cls, meters: list[MeterConfig]) -> list[MeterConfig]:
        for what, values in (
            ("meter id", [m.id for m in meters]),
            ("gpiod line", [f"{m.chip}:{m.line}" for m in meters if m.source == "gpiod"]),
        ):
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"each {what} may appear once, repeated: {', '.join(dupes)}")
        return meters

"""Configuration section of the relays service: boards, and the relays on them."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from services.core.config import Section, check_time_zone
from services.core.contract.orders import ORDERS
from services.core.contract.topics import slug


def _check_slug(value: str) -> str:
    if value != slug(value):
        raise ValueError(f"must be a slug such as {slug(value)!r}")
    return value


class BoardConfig(Section):
    """An output board: the Pi's GPIO header, or an I2C expander."""

    id: str = Field(description="Board id, referred to by relays.")

    @field_validator("id")
    @classmethod
    def _id_is_slug(cls, value: str) -> str:
        return _check_slug(value)

    driver: Literal["gpio", "pcf8574", "mcp23017"] = Field(
        description="gpio (BCM pin numbers), pcf8574 (8 outputs), mcp23017 (16 outputs)."
    )
    bus: int | str | None = Field(
        None,
        description="I2C bus: 1 for /dev/i2c-1; 'fake:/path/board.json' for the simulated "
        "board used by tests and make run.",
    )
    address: int | None = Field(
        None, ge=0x03, le=0x77, description="I2C address, e.g. 0x20 (write 0x20 in YAML)."
    )

    @model_validator(mode="after")
    def _i2c_needs_bus(self) -> BoardConfig:
        if self.driver != "gpio" and (self.bus is None or self.address is None):
            raise ValueError(f"an {self.driver} board needs 'bus' and 'address'")
        return self


class RelayConfig(Section):
    """One load: an on/off relay, or a fil pilote zone (two outputs) for a radiator."""

    id: str = Field(description="Relay id in topics (a slug).", examples=["water-heater"])
    name: str | None = Field(None, description="Display name.")
    kind: Literal["switch", "fil_pilote"] = Field("switch", description="switch or fil_pilote.")
    board: str = Field(description="Id of the board the relay is on.")
    channel: int | None = Field(None, ge=0, le=63, description="Output of a switch relay.")
    channels: tuple[int, int] | None = Field(
        None, description="The two outputs of a zone: the first alone gives hors-gel "
        "(negative half-wave), the second alone arret (positive half-wave).",
    )
    active_low: bool = Field(False, description="Switch relay energised by a low output.")
    invert: bool = Field(False, description="Fil pilote board wired with inverted optos.")
    default: str = Field(
        "off", description="Output in 'auto' mode until an automation drives it: off/on, or "
        "a fil pilote order.",
    )
    safe_state: str = Field(
        "off", description="Applied at start, on shutdown and when shed: off, or a fil "
        "pilote order (arret, hors-gel).",
    )
    min_on_s: float = Field(0, ge=0, description="Least time on before switching off.")
    min_off_s: float = Field(0, ge=0, description="Least time off before switching on.")

    @field_validator("id")
    @classmethod
    def _id_is_slug(cls, value: str) -> str:
        return _check_slug(value)

    @model_validator(mode="after")
    def _consistent(self) -> RelayConfig:
        if self.kind == "switch":
            if self.channel is None:
                raise ValueError("a switch relay needs 'channel'")
            allowed: tuple[str, ...] = ("on", "off")
        else:
            if self.channels is None:
                raise ValueError("a fil_pilote zone needs 'channels: [a, b]'")
            allowed = ORDERS
            if self.default == "off":
                object.__setattr__(self, "default", "confort")
            if self.safe_state == "off":
                object.__setattr__(self, "safe_state", "arret")
        for key in ("default", "safe_state"):
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key} {getattr(self, key)!r} is not one of {allowed}")
        return self


class RelaysConfig(Section):
    """Relays and fil pilote radiators."""

    boards: list[BoardConfig] = Field(default_factory=list, description="Output boards.")
    relays: list[RelayConfig] = Field(default_factory=list, description="Loads.")
    state_file: Path | None = Field(
        None, description="Where modes, expiries and shed flags are kept (default: "
        "<data_dir>/relays.json).",
    )
    reassert_interval_s: float = Field(
        10.0, gt=0, description="Outputs are read back and re-written this often, so an I2C "
        "expander that reset (all radiators back to Confort) is caught.",
    )
    shedding_grace_s: float = Field(
        5.0, ge=0, le=3600, description="Fail-safe: once a relay has received a shed flag it "
        "is under shedding; when the shedding service is gone (its status offline, its "
        "heartbeat older than 3 intervals, or its state says stale: its meter went silent) "
        "for this long, every relay under shedding goes to its safe state, whatever its mode "
        "(state source 'failsafe'), until shedding is back and fresh. At start, with no news "
        "of shedding yet, the grace period runs from the start.",
    )
    timezone: str = Field(
        "Europe/Paris", description="Local time of a command's 'until' (HH:MM): a forced "
        "mode ends at the next time this zone's clock reads it.", examples=["Europe/Paris"],
    )

    _zone = field_validator("timezone")(check_time_zone)

    state_expiry_s: int = Field(
        30, ge=3, le=3600, description="MQTT message expiry of each relay's retained state; "
        "the state is re-published every third of it (at most every 10 s), so after a crash "
        "of the relays service its state (and its readback_ok) is gone within this time.",
    )

    @model_validator(mode="after")
    def _references(self) -> RelaysConfig:
        boards = {b.id for b in self.boards}
        ids = [r.id for r in self.relays]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"relay ids must be unique, repeated: {', '.join(dupes)}")
        for relay in self.relays:
            if relay.board not in boards:
                raise ValueError(f"relay {relay.id!r}: unknown board {relay.board!r}")
        return self

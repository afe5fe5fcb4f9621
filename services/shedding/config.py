"""Configuration section of the shedding service."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from services.core.config import Section
from services.core.contract.topics import slug


class LoadConfig(Section):
    """A load the shedder may switch off, and what it knows about it."""

    relay: str = Field(description="Id of the relay (relays service) driving the load.")
    name: str | None = Field(None, description="Its name in Home Assistant; default: the "
                             "relay's name (relays section), else its id.")
    priority: int = Field(
        100, description="Lower numbers are shed first and restored last."
    )
    phase: int = Field(1, ge=0, le=3, description="Phase the load is on (0: all three).")
    power_w: float | None = Field(
        None, gt=0, description="Declared power: sheds enough loads at once to cover an "
        "excess, and restores a load only when it fits under the restore threshold.",
    )
    rotate: bool = Field(False, description="Take part in cyclic rotation (comfort loads).")

    @field_validator("relay")
    @classmethod
    def _slug(cls, value: str) -> str:
        if value != slug(value):
            raise ValueError(f"must be a relay id (a slug such as {slug(value)!r})")
        return value


class SheddingConfig(Section):
    """Load shedding before the Linky breaker trips."""

    meter: str = Field("linky", description="Device id of the teleinfo meter to follow.")
    limit_va: list[float] | None = Field(
        None, description="Limit per phase in VA; default: from the meter (ISOUSC or PREF)."
    )
    shed_at: float = Field(0.9, gt=0, le=1.5, description="Shed above this share of the limit.")
    restore_below: float = Field(
        0.8, gt=0, description="Restore a load only below this share, its power counted."
    )
    restore_delay_s: float = Field(180.0, ge=0, description="Wait after any change to restore.")
    stale_after_s: float = Field(
        10.0, gt=0, description="Meter data older than this holds every load shed."
    )
    rotation_s: float = Field(
        0.0, ge=0, description="Rotate which 'rotate' loads stay shed this often (0: never)."
    )
    voltage_v: float = Field(230.0, gt=0, description="To turn historique amps into VA.")
    loads: list[LoadConfig] = Field(default_factory=list, description="Sheddable loads.")
    state_file: Path | None = Field(
        None, description="Where the shed set is kept (default: <data_dir>/shedding.json)."
    )

    @model_validator(mode="after")
    def _thresholds(self) -> SheddingConfig:
        if self.restore_below >= self.shed_at:
            raise ValueError(
                f"restore_below ({self.restore_below}) must be under shed_at ({self.shed_at})"
            )
        relays = [load.relay for load in self.loads]
        dupes = sorted({r for r in relays if relays.count(r) > 1})
        if dupes:
            raise ValueError(f"each relay may appear once in loads, repeated: {dupes}")
        return self

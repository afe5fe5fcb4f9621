"""Configuration section of the historian service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator

from services.core.config import Section, read_secret
from services.core.history.tariffs import Tariff, sorted_tariffs


class InfluxConfig(Section):
    """InfluxDB 2 (or VictoriaMetrics, which speaks the same write API)."""

    enabled: bool = Field(False, description="Write every reading to InfluxDB.")
    url: str = Field("http://127.0.0.1:8086", description="InfluxDB URL.")
    org: str = Field("enerbox", description="InfluxDB organisation.")
    bucket: str = Field("enerbox", description="InfluxDB bucket.")
    token: SecretStr | None = Field(None, description="API token; prefer token_file or env.")
    token_file: Path | None = Field(None, description="File holding the API token.")
    disk_budget_mb: float = Field(
        512, gt=0, description="Disk the queue may use while InfluxDB is unreachable; past "
        "it, new points are refused (with an event), queued ones are kept.",
    )
    batch_size: int = Field(5000, ge=1, description="Lines per write request.")
    write_interval_s: float = Field(
        0, ge=0, description="Least time between two write requests that are not full "
        "batches: points wait in the disk queue meanwhile, so a central database gets fewer, "
        "larger requests (e.g. 30; 0: each batch at once, about every 0.5 s).",
    )
    site: str | None = Field(
        None, description="Value of the `site` tag on every point (default: mqtt.prefix), so "
        "that boxes sharing a central database keep their series apart.",
    )

    def model_post_init(self, _context: Any) -> None:
        """Resolve the token file."""
        object.__setattr__(self, "token",
                           read_secret(self.token, self.token_file, "historian.influxdb.token"))


class EmoncmsConfig(Section):
    """emoncms inputs, posted in bulk."""

    enabled: bool = Field(False, description="Post inputs to emoncms.")
    url: str = Field("https://emoncms.org", description="emoncms base URL.")
    apikey: SecretStr | None = Field(None, description="Write API key; prefer apikey_file/env.")
    apikey_file: Path | None = Field(None, description="File holding the write API key.")
    node_prefix: str = Field("enerbox", description="Node names: <prefix>_<service>_<device>.")
    disk_budget_mb: float = Field(128, gt=0, description="Queue size while emoncms is away.")
    interval_s: float = Field(10, gt=0, description="Least time between two values of an "
                              "input (emoncms feeds are 10 s or slower).")

    def model_post_init(self, _context: Any) -> None:
        """Resolve the key file."""
        object.__setattr__(self, "apikey",
                           read_secret(self.apikey, self.apikey_file, "historian.emoncms.apikey"))


class ProductionSource(Section):
    """A monotonic counter of produced energy (PV inverter, pulse meter, MPPT yield)."""

    service: str = Field(description="Service publishing it, e.g. vedirect.")
    device: str = Field(description="Device id, e.g. hq2245sim02.")
    field: str = Field(description="Field, e.g. yield_total_kwh or ac_energy_wh.")
    scale_to_wh: float = Field(1.0, gt=0, description="1000 for a kWh counter.")


class HistorianConfig(Section):
    """Local history, daily energy ledger, InfluxDB and emoncms."""

    db_file: Path | None = Field(None, description="Default: <data_dir>/history.sqlite3.")
    retention_days: int = Field(730, ge=1, description="Keep one-minute aggregates this long.")
    flush_interval_s: float = Field(
        60, gt=0, description="Local history writes are batched this often, 2 s after each "
        "multiple of it on the clock: a power cut loses the local history's readings since the "
        "last one (at most this + 2 s; never InfluxDB's, whose disk queue commits every 0.5 s).",
    )
    timezone: str = Field("Europe/Paris", description="Days of the ledger are local days.")
    max_power_w: float = Field(
        36000, gt=0, description="A counter rising faster than this is a bad read: flagged."
    )
    max_clock_skew_s: float = Field(
        86400, gt=0, description="A reading whose ts is further than this from the box's "
        "clock (or before 2000) is not stored: it goes to the dead letters, with an event.",
    )
    tariffs: list[Tariff] = Field(
        default_factory=list, description="Prices, each valid from a date (a change never "
        "rewrites the past).",
    )
    production: list[ProductionSource] = Field(
        default_factory=list, description="Counters of produced energy for the ledger.",
    )
    session_expiry_s: int = Field(
        7 * 86400, ge=0, description="The broker keeps the historian's MQTT session (and the "
        "readings published while it is down, up to its max_queued_messages) this long.",
    )
    influxdb: InfluxConfig = Field(default_factory=InfluxConfig)
    emoncms: EmoncmsConfig = Field(default_factory=EmoncmsConfig)

    @field_validator("tariffs")
    @classmethod
    def _dates(cls, tariffs: list[Tariff]) -> list[Tariff]:
        return sorted_tariffs(tariffs)  # two tariffs from one date: which one? an error

"""Configuration section of the inverter service: buses, each with its devices."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from services.core.config import Section
from services.core.contract.topics import slug

Protocol = Literal["modbus-tcp", "rtu-over-tcp", "modbus-rtu", "aurora"]
TCP_PROTOCOLS = ("modbus-tcp", "rtu-over-tcp")
SERIAL_PROTOCOLS = ("modbus-rtu", "aurora")
DEFAULT_BAUDRATE = {"modbus-rtu": 9600, "aurora": 19200}


class DeviceConfig(Section):
    """One inverter or meter on a bus."""

    id: str = Field(description="Device id in topics (a slug).", examples=["roof", "meter"])
    address: int = Field(
        ge=0, le=255,
        description="Modbus unit id (device_id), or the Aurora address (2 by default on a PVI).",
    )
    kind: Literal["sunspec", "huawei", "aurora"] = Field(
        "sunspec", description="sunspec or huawei (a Huawei SUN2000's own register map) on the "
        "Modbus protocols, aurora on an aurora bus."
    )
    name: str | None = Field(None, description="Display name in Home Assistant.")
    poll_s: float = Field(5.0, gt=0, description="Poll period by day.")
    night_poll_s: float = Field(
        60.0, gt=0, description="Poll period while the device sleeps (night): it is asked "
        "this often whether it woke up."
    )

    @field_validator("id")
    @classmethod
    def _id_is_slug(cls, value: str) -> str:
        if value != slug(value):
            raise ValueError(f"must be a slug such as {slug(value)!r}")
        return value


class BusConfig(Section):
    """One Modbus TCP host, or one RS485 serial port, and the devices on it."""

    name: str = Field(description="Bus name, in logs and diagnostics.", examples=["roof"])
    protocol: Protocol = Field(
        description="modbus-tcp (SunSpec over TCP), rtu-over-tcp (RTU frames through a TCP "
        "gateway), modbus-rtu (RS485 port) or aurora (ABB/Power-One PVI on RS485)."
    )
    host: str | None = Field(None, description="Host of a modbus-tcp or rtu-over-tcp bus.")
    port: int = Field(502, ge=1, le=65535, description="TCP port of a TCP bus.")
    serial_port: str | None = Field(
        None, description="Serial port of a modbus-rtu or aurora bus (a /dev/serial/by-id/... "
        "path; socket://host:port also works, for tests).",
    )
    baudrate: int | None = Field(
        None, gt=0, description="Serial speed; default 9600 for modbus-rtu, 19200 for aurora (8N1)."
    )
    timeout_s: float = Field(
        1.0, gt=0, description="How long one request waits for its answer (no library retries: "
        "enerbox retries on the next poll)."
    )
    quiet_gap_s: float = Field(
        0.05, ge=0, description="On an RS485 (or RTU) bus: silence after a timeout before the "
        "next request, so a late answer does not collide with it."
    )
    connect_delay_s: float = Field(
        0.0, ge=0, description="Wait after connecting before the first request (Huawei dongles "
        "ignore the first seconds of a connection)."
    )
    devices: list[DeviceConfig] = Field(description="Devices on this bus.", min_length=1)

    @property
    def serial(self) -> bool:
        """A serial (RS485) port rather than a TCP host."""
        return self.protocol in SERIAL_PROTOCOLS

    @property
    def speed(self) -> int:
        """The serial speed in use."""
        return self.baudrate or DEFAULT_BAUDRATE.get(self.protocol, 9600)

    @property
    def where(self) -> str:
        """Host:port or serial port, for logs."""
        return str(self.serial_port) if self.serial else f"{self.host}:{self.port}"

    @model_validator(mode="after")
    def _consistent(self) -> BusConfig:
        if self.serial:
            if not self.serial_port:
                raise ValueError(f"serial_port is required for protocol {self.protocol}")
            if self.host is not None:
                raise ValueError(f"host is for TCP buses, not {self.protocol} (use serial_port)")
        else:
            if not self.host:
                raise ValueError(f"host is required for protocol {self.protocol}")
            if self.serial_port is not None:
                raise ValueError(f"serial_port is for serial buses, not {self.protocol}")
        # a Modbus bus may mix SunSpec and Huawei devices: the worker reads each its own way
        want = ("aurora",) if self.protocol == "aurora" else ("sunspec", "huawei")
        wrong = [d.id for d in self.devices if d.kind not in want]
        if wrong:
            raise ValueError(f"devices {', '.join(wrong)}: kind must be {' or '.join(want)} "
                             f"on a {self.protocol} bus")
        addresses = [d.address for d in self.devices]
        dupes = sorted({a for a in addresses if addresses.count(a) > 1})
        if dupes:
            raise ValueError(f"each address may appear once on a bus, repeated: {dupes}")
        return self


class InverterConfig(Section):
    """PV inverters and meters: SunSpec over Modbus TCP/RTU, ABB Aurora on RS485."""

    buses: list[BusConfig] = Field(
        default_factory=list, description="Buses to poll, one thread each; none by default."
    )
    producing_above_w: float = Field(
        50.0, ge=0, description="An inverter that goes silent after a reading below this AC "
        "power (or that never produced since start) is asleep (night), not offline."
    )
    offline_after_failures: int = Field(
        3, ge=1, description="Failed polls in a row, by day after producing, before a device "
        "is offline."
    )
    backoff_max_s: float = Field(
        60.0, gt=0, description="Longest wait between polls of a device that does not answer."
    )
    publish_raw: bool = Field(True, description="Publish the SunSpec labels on .../raw.")
    diagnostics_interval_s: float = Field(
        60.0, gt=0, description="How often the diagnostics counters are published."
    )

    @field_validator("buses")
    @classmethod
    def _unique(cls, buses: list[BusConfig]) -> list[BusConfig]:
        for what, values in (
            ("bus name", [b.name for b in buses]),
            ("device id", [d.id for b in buses for d in b.devices]),
            ("serial_port", [b.serial_port for b in buses if b.serial_port]),
        ):
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                # One protocol per serial port: two buses on one port would be two protocols
                # (or two threads) talking over each other on one RS485 pair.
                raise ValueError(f"each {what} may appear once, repeated: {', '.join(dupes)}")
        return buses

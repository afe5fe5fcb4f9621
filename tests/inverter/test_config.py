"""The inverter section: buses, protocols, devices, and clear errors by key."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.app.root_config import load_config
from services.inverter.config import InverterConfig
from tests.conftest import ROOT


def tcp(**over: Any) -> dict[str, Any]:
    return {"name": "roof", "protocol": "modbus-tcp", "host": "192.168.1.20",
            "devices": [{"id": "sma", "address": 3}], **over}


def rs485(**over: Any) -> dict[str, Any]:
    return {"name": "pvi", "protocol": "aurora", "serial_port": "/dev/ttyUSB0",
            "devices": [{"id": "pvi", "address": 2, "kind": "aurora"}], **over}


def error(section: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        InverterConfig.model_validate(section)
    return str(info.value)


def test_defaults_per_protocol() -> None:
    cfg = InverterConfig.model_validate({"buses": [tcp(), rs485(),
                                                   rs485(name="rtu", protocol="modbus-rtu",
                                                         serial_port="/dev/ttyUSB1",
                                                         devices=[{"id": "fimer", "address": 1}])]})
    roof, pvi, rtu = cfg.buses
    assert roof.port == 502 and roof.devices[0].poll_s == 5 and roof.devices[0].night_poll_s == 60
    assert roof.devices[0].kind == "sunspec" and not roof.serial
    assert pvi.speed == 19200 and rtu.speed == 9600 and pvi.serial
    assert rtu.where == "/dev/ttyUSB1" and roof.where == "192.168.1.20:502"


@pytest.mark.parametrize(("section", "expected"), [
    ({"buses": [tcp(protocol="aurora")]}, "serial_port is required for protocol aurora"),
    ({"buses": [rs485(protocol="modbus-tcp", host="h")]}, "serial_port is for serial buses"),
    ({"buses": [tcp(host=None)]}, "host is required for protocol modbus-tcp"),
    ({"buses": [rs485(devices=[{"id": "x", "address": 2}])]},
     "devices x: kind must be aurora on a aurora bus"),
    ({"buses": [tcp(devices=[{"id": "x", "address": 2, "kind": "aurora"}])]},
     "kind must be sunspec"),
    ({"buses": [tcp(), tcp(name="other")]}, "each device id may appear once, repeated: sma"),
    ({"buses": [rs485(), rs485(name="b", devices=[{"id": "p2", "address": 3, "kind": "aurora"}])]},
     "each serial_port may appear once, repeated: /dev/ttyUSB0"),
    ({"buses": [tcp(devices=[{"id": "a", "address": 1}, {"id": "b", "address": 1}])]},
     "each address may appear once on a bus"),
    ({"buses": [tcp(devices=[{"id": "Roof SMA", "address": 1}])]}, "must be a slug"),
    ({"buses": [tcp(devices=[])]}, "buses.0.devices"),
    ({"buses": [tcp(protocol="modbus-udp")]}, "buses.0.protocol"),
])
def test_errors_name_the_key_and_what_was_expected(section: dict[str, Any], expected: str) -> None:
    assert expected in error(section)


def test_the_example_config_polls_the_simulator() -> None:
    config = load_config(ROOT / "config" / "enerbox.yaml", env={})
    (bus,) = config.inverter.buses
    assert (bus.protocol, bus.host, bus.port) == ("modbus-tcp", "127.0.0.1", 1502)
    assert [(d.id, d.address) for d in bus.devices] == [("inverter", 1), ("meter", 2)]

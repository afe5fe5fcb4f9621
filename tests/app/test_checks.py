"""References between sections: errors stop load_config, missing serial ports only warn."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from services.app.checks import warnings
from services.app.root_config import load_config
from services.core.config import ConfigError
from tests.conftest import ROOT

BOARDS = """relays:
  boards:
    - {id: gpio, driver: gpio}
    - {id: remora, driver: mcp23017, bus: 1, address: 0x20}
  relays:
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "enerbox.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), env={})
    return "\n".join(err.value.problems)


def test_shedding_load_naming_an_unknown_relay(tmp_path: Path) -> None:
    text = BOARDS + "    - {id: heater, board: gpio, channel: 17}\n" \
        "shedding:\n  loads:\n    - {relay: heater}\n    - {relay: pump}\n"
    found = problems(tmp_path, text)
    assert "shedding.loads.1.relay = 'pump': no such relay in relays.relays (known: heater)" \
        in found
    assert "loads.0" not in found


def test_shedding_meter_that_does_not_exist(tmp_path: Path) -> None:
    text = BOARDS + "    - {id: heater, board: gpio, channel: 17}\n" \
        "teleinfo:\n  meters:\n    - {id: main, port: /dev/ttyAMA0}\n" \
        "shedding:\n  meter: linky\n  loads:\n    - {relay: heater}\n"
    assert "shedding.meter = 'linky': no such meter in teleinfo.meters (known: main)" \
        in problems(tmp_path, text)


def test_an_unused_shedding_needs_no_meter(tmp_path: Path) -> None:
    # The default meter id must not stop a box whose meter is called otherwise.
    config = load_config(write(tmp_path, "teleinfo:\n  meters:\n    - {id: main}\n"), env={})
    assert config.shedding.meter == "linky" and not config.shedding.loads


def test_two_relays_on_one_output(tmp_path: Path) -> None:
    text = BOARDS + (
        "    - {id: heater, board: gpio, channel: 17}\n"
        "    - {id: pump, board: gpio, channel: 17}\n"
        "    - {id: living, kind: fil_pilote, board: remora, channels: [0, 1]}\n"
        "    - {id: bedroom, kind: fil_pilote, board: remora, channels: [1, 2]}\n"
        "    - {id: attic, board: remora, channel: 2}\n"
        "    - {id: other, board: remora, channel: 17}\n"  # 17 of another board: fine
    )
    found = problems(tmp_path, text).splitlines()
    assert found == [
        "relays.relays.1.channel = 17: output 17 of board 'gpio' is already used by "
        "relays.relays.0.channel (relay 'heater')",
        "relays.relays.3.channels.0 = 1: output 1 of board 'remora' is already used by "
        "relays.relays.2.channels.1 (relay 'living')",
        "relays.relays.4.channel = 2: output 2 of board 'remora' is already used by "
        "relays.relays.3.channels.1 (relay 'bedroom')",
    ]


def test_a_zone_on_one_output_twice(tmp_path: Path) -> None:
    text = BOARDS + "    - {id: living, kind: fil_pilote, board: remora, channels: [3, 3]}\n"
    assert "relays.relays.0.channels.1 = 3: output 3 of board 'remora'" in problems(tmp_path, text)


def test_missing_serial_ports_are_warnings(tmp_path: Path) -> None:
    there = tmp_path / "ttyFAKE"
    there.touch()
    text = (f"teleinfo:\n  meters:\n    - {{id: linky, port: {there}}}\n"
            f"    - {{id: prod, port: {tmp_path / 'ttyGONE'}}}\n"
            "    - {id: net, port: 'socket://127.0.0.1:5000'}\n"
            f"vedirect:\n  ports:\n    - {{port: {tmp_path / 'ttyVE'}}}\n")
    config = load_config(write(tmp_path, text), env={})  # not an error: it may be plugged later
    found = warnings(config)
    assert len(found) == 2
    assert found[0].startswith(f"teleinfo.meters.1.port = '{tmp_path / 'ttyGONE'}': no such")
    assert found[1].startswith(f"vedirect.ports.0.port = '{tmp_path / 'ttyVE'}': no such")


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.app.cli", "config", "check",
                           str(path)], capture_output=True, text=True, check=False, cwd=ROOT)


def test_config_check_prints_reference_errors_and_port_warnings(tmp_path: Path) -> None:
    bad = write(tmp_path, BOARDS + "    - {id: heater, board: gpio, channel: 17}\n"
                "shedding:\n  loads:\n    - {relay: pump}\n")
    result = _check(bad)
    assert result.returncode == 1
    assert "shedding.loads.0.relay = 'pump': no such relay" in result.stderr
    gone = tmp_path / "ttyGONE"
    ok = write(tmp_path, f"teleinfo:\n  meters:\n    - {{id: linky, port: {gone}}}\n")
    result = _check(ok)
    assert result.returncode == 0, result.stderr
    assert f"warning: teleinfo.meters.0.port = '{gone}': no such serial port" in result.stderr
    assert "OK" in result.stdout


def test_example_config_has_no_reference_error() -> None:
    config = load_config(ROOT / "config" / "enerbox.yaml", env={})
    assert [load.relay for load in config.shedding.loads] == ["water-heater", "bedroom", "living"]


AUTOMATED = BOARDS + """    - {id: heater, board: gpio, channel: 17}
    - {id: living, kind: fil_pilote, board: remora, channels: [0, 1]}
teleinfo:
  meters:
    - {id: linky, port: /dev/ttyAMA0}
shedding:
  meter: linky
  loads:
    - {relay: heater, priority: 1, power_w: 3000}
"""


def test_automation_loads_on_relays_that_exist_with_the_right_kind(tmp_path: Path) -> None:
    text = AUTOMATED + """automation:
  loads:
    - {relay: pump}
    - relay: heater
      power_w: 3000
      schedule: [{time: "06:00-08:00", order: confort}]
      default: eco
    - relay: living
      schedule: [{time: "06:00-08:00", order: confort}]
      default: eco
      block: [{relay: boiler, is: "on"}]
"""
    found = problems(tmp_path, text)
    assert "automation.loads.0.relay = 'pump': no such relay in relays.relays" in found
    assert "automation.loads.1.schedule: orders are for a fil pilote zone, and relay " \
        "'heater' is a switch" in found
    assert "automation.loads.2.block: relay 'boiler' does not exist" in found


def test_a_shed_and_automated_load_declares_its_power(tmp_path: Path) -> None:
    text = AUTOMATED + "automation:\n  loads:\n    - {relay: heater}\n"
    assert "automation.loads.0.power_w: relay 'heater' is also a shedding load" \
        in problems(tmp_path, text)
    fine = AUTOMATED + "automation:\n  loads:\n    - {relay: heater, power_w: 3000}\n"
    assert load_config(write(tmp_path, fine), env={}).automation.loads[0].power_w == 3000


def test_signals_name_a_known_service_and_field(tmp_path: Path) -> None:
    text = AUTOMATED + """automation:
  signals:
    grid: {source: teleinfo/linky, field: net_power_va, stale_after_s: 30}
    typo: {source: teleinfo/linky, field: net_powr_va, stale_after_s: 30}
    who: {source: weather/roof, field: temperature_c, stale_after_s: 30}
    tank: {source: temperature/ballon, field: temperature_c, stale_after_s: 180}
"""
    found = problems(tmp_path, text)
    assert "automation.signals.typo.field = 'net_powr_va': teleinfo publishes no such field" \
        in found
    assert "automation.signals.who.source = 'weather/roof': no device service 'weather'" \
        in found
    assert "signals.grid" not in found and "signals.tank" not in found  # a service to come


def test_config_check_says_how_it_read_unquoted_yaml_words(tmp_path: Path) -> None:
    text = BOARDS + """    - {id: heater, board: gpio, channel: 17}
automation:
  loads:
    - relay: heater
      when_stale: off
      daily: {min_on: 1h, by: 6:00, catch_up: "22:00-06:00"}
"""
    result = _check(write(tmp_path, text))
    assert result.returncode == 0, result.stderr
    assert 'note: automation.loads.0.when_stale: unquoted off (YAML boolean False) read as ' \
        '"off"' in result.stderr
    assert 'note: automation.loads.0.daily.by: unquoted 06:00 (YAML 1.1 base-60 number 360)' \
        in result.stderr

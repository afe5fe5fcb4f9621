"""`make run` (enerbox sim stack): live readings on MQTT, nothing left running after Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from services.automation.discovery import STATUSES
from tests.conftest import ROOT, free_port, wait_until


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(cmdline)
    return found


HEATER, LINKY = "enerbox/relays/water-heater/state", "enerbox/teleinfo/linky/state"
AUTOMATION = "enerbox/automation/water-heater/state"
INVERTER, METER = "enerbox/inverter/inverter/state", "enerbox/inverter/meter/state"
TANK = "enerbox/temperature/tank-top/state"
PULSES = "enerbox/pulses/water-heater/state"


def test_stack_publishes_every_device_and_stops_cleanly(tmp_path: Path) -> None:
    """Every device's state, the automation's included; Ctrl-C leaves nothing running.

    The water heater switched on by the simulated surplus (about 70 s in) is timed by
    `make bench` (bench/bench_make_run.py); here the automation must be running and
    deciding."""
    port = free_port()
    run_dir = tmp_path / "run"
    stack = subprocess.Popen(
        [sys.executable, "-m", "services.app.cli", "sim", "stack", "--port", str(port),
         "--run-dir", str(run_dir)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    states: dict[str, dict[str, object]] = {}
    got_all = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        if not msg.payload:
            return
        state = json.loads(msg.payload)
        states[msg.topic] = state
        devices = sum("/vedirect/" in t for t in states)
        if devices == 2 and {LINKY, HEATER, AUTOMATION, INVERTER, METER, TANK, PULSES,
                             "enerbox/shedding/linky/state"} <= set(states):
            got_all.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_message = on_message
    client.on_connect = lambda c, *_a: c.subscribe("enerbox/+/+/state")
    try:
        assert stack.stdout is not None
        banner = stack.stdout.readline() + stack.stdout.readline()
        assert f"mosquitto_sub -h 127.0.0.1 -p {port}" in banner, banner
        client.connect("127.0.0.1", port)
        client.loop_start()
        assert got_all.wait(45), sorted(states)
        assert "enerbox/teleinfo/linky/state" in states
        assert states["enerbox/relays/living/state"]["readback_ok"] is True
        assert "enerbox/shedding/linky/state" in states
        products = {s.get("product_name") for t, s in states.items() if "/vedirect/" in t}
        assert len(products) == 2
        assert states[AUTOMATION]["status"] in STATUSES
        # The simulated day starts at 11:30: the inverter produces, the meter counts.
        inverter: dict[str, Any] = states[INVERTER]
        assert inverter["status"] == "mppt" and inverter["ac_power_w"] > 0
        assert inverter["ac_energy_wh"] > 0 and "serial" in inverter
        assert "power_w" in states[METER] and "energy_import_wh" in states[METER]
        tank: dict[str, Any] = states[TANK]
        assert 5 < tank["temperature_c"] < 90  # the simulated tank's probe
        assert "energy_wh" in states[PULSES] and "pulses_total" in states[PULSES]
        # The dummy screen's frame, where the api serves it from (the page's preview).
        frame = run_dir / "display" / "hall.png"
        wait_until(frame.is_file, 15, "no frame from the display")
    finally:
        client.loop_stop()
        stack.send_signal(signal.SIGINT)  # what Ctrl-C in `make run` sends
        code = stack.wait(20)
    assert code == 0
    # The stack waited for its children; the last of them may still be going (no fixed wait).
    deadline = time.monotonic() + 10
    while _processes_mentioning(str(run_dir)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_mentioning(str(run_dir)) == []
    assert not list((run_dir / "sim").iterdir())  # every pty link removed
    # Every simulator's counters kept for the next run (the Linky's indexes, the Victrons'
    # totals, the inverter's and its meter's energy).
    assert sorted(p.name for p in (run_dir / "counters").iterdir()) == [
        "sim-inverter.json", "sim-tic.json", "sim-vedirect0.json", "sim-vedirect1.json"]

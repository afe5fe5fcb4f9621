"""`enerbox run all` under the simulators: every service online while each device publishes
ten states in a row (about a quarter of a minute of the simulated home)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from services.app.registry import SERVICES
from tests.conftest import ROOT, free_port, wait_until


def test_single_process_stack_stays_online_while_devices_publish(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "ENERBOX_API__PORT": str(free_port())}
    stack = subprocess.Popen(
        [sys.executable, "-m", "services.app.cli", "sim", "stack", "--port", str(port),
         "--run-dir", str(tmp_path), "--single-process"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    status: dict[str, str] = {}
    states: dict[str, float] = {}
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with lock:
            if msg.topic.endswith("/status"):
                status[msg.topic.split("/")[1]] = msg.payload.decode()
            elif msg.payload:
                states[msg.topic] = time.monotonic()
                counts[msg.topic] = counts.get(msg.topic, 0) + 1
                json.loads(msg.payload)

    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_message = on_message
    client.on_connect = lambda c, *_a: c.subscribe([("enerbox/+/status", 1),
                                                     ("enerbox/+/+/state", 0)])
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                client.connect("127.0.0.1", port)
                break
            except OSError:
                assert time.monotonic() < deadline, "broker did not start"
                time.sleep(0.2)
        client.loop_start()
        deadline = time.monotonic() + 30
        while {s for s, v in status.items() if v == "online"} != set(SERVICES):
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
        with lock:
            seen = dict(counts)

        def steady() -> bool:
            # Five more states from the meter and from each Victron device, all online.
            with lock:
                devices = [t for t in counts if t.split("/")[1] in ("teleinfo", "vedirect")]
                more = [counts[t] - seen.get(t, 0) for t in devices]
                online = all(v == "online" for v in status.values())
            assert online, status
            return len(devices) == 3 and min(more) >= 5

        def steady_and_running() -> bool:
            assert stack.poll() is None, "the stack exited"
            return steady()

        wait_until(steady_and_running, 120, f"not five states of each device: {counts}")
        with lock:
            assert all(v == "online" for v in status.values()), status
            fresh = {t for t, at in states.items() if time.monotonic() - at < 10}
        assert "enerbox/teleinfo/linky/state" in fresh
        assert sum(1 for t in fresh if t.startswith("enerbox/vedirect/")) == 2
        assert stack.poll() is None
    finally:
        client.loop_stop()
        stack.send_signal(signal.SIGINT)
        code = stack.wait(30)
    assert code == 0
    log = (tmp_path / "all.log").read_text(encoding="utf-8")
    assert "Traceback" not in log, log[-3000:]

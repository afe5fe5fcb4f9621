"""Shedding latency: last byte of the peak frame written to the pty -> relay state on MQTT.

teleinfo, shedding and relays run as their own processes against a real mosquitto; the
bench writes TIC frames on a pty (the meter), holding back the frame's last byte (ETX) and
timing from the moment it is written to the moment the relay's confirmed state (shed, read
back from the fake I2C board) arrives at an MQTT subscriber.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.net import free_port, wait_port
from services.core.contract import Topics
from services.teleinfo.protocol import Mode, encode_frame, encode_group

ROOT = Path(__file__).resolve().parents[1]
PEAKS = 200


def frame(sinsts: int) -> bytes:
    """A standard single-phase frame with the power given (PREF 9 kVA)."""
    s = Mode.STANDARD
    groups = [("ADSC", "031999000001"), ("VTIC", "02"), ("NGTF", "      BASE      "),
              ("LTARF", "      BASE      "), ("EAST", "001234567"), ("EASF01", "001234567"),
              ("IRMS1", f"{sinsts // 230:03d}"), ("URMS1", "230"), ("PREF", "09"),
              ("PCOUP", "09"), ("SINSTS", f"{sinsts:05d}"), ("STGE", "003A0001"),
              ("NTARF", "01")]
    return encode_frame([encode_group(label, value, s) for label, value in groups])


def _config(tmp: Path, port: int, link: Path) -> Path:
    config = {
        "general": {"data_dir": str(tmp / "data")},
        "mqtt": {"port": port, "prefix": "bench"},
        "homeassistant": {"discovery": False},
        "teleinfo": {"meters": [{"id": "linky", "port": str(link), "mode": "standard"}],
                     "publish_raw": False},
        "relays": {"boards": [{"id": "remora", "driver": "mcp23017",
                               "bus": f"fake:{tmp / 'board.json'}", "address": 0x20}],
                   "relays": [{"id": "living", "kind": "fil_pilote", "board": "remora",
                               "channels": [0, 1]}]},
        "shedding": {"restore_delay_s": 0, "loads": [{"relay": "living", "power_w": 3000}]},
    }
    path = tmp / "enerbox.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def _wait(states: queue.Queue[dict[str, Any]], shed: bool, timeout: float = 5.0) -> float:
    deadline = time.perf_counter() + timeout
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            raise TimeoutError(f"no relay state with shed={shed}")
        state = states.get(timeout=left)
        if state["shed"] is shed and state["readback_ok"]:
            return float(state["_at"])


def _peaks(master: int, states: queue.Queue[dict[str, Any]], peaks: int) -> list[float]:
    low, high = frame(1000), frame(9900)
    os.write(master, low * 2)
    latencies = []
    for _ in range(peaks):
        os.write(master, high[:-1])
        time.sleep(0.005)
        start = time.perf_counter()
        os.write(master, high[-1:])  # the last byte of the frame showing the peak
        latencies.append((_wait(states, True) - start) * 1000)
        os.write(master, low)  # back under: restored at once (delay 0)
        _wait(states, False)
    return latencies


def measure(peaks: int = PEAKS) -> list[float]:
    """Latencies in milliseconds, one per peak."""
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    states: queue.Queue[dict[str, Any]] = queue.Queue()
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        (tmp / "mosquitto.conf").write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n",
            encoding="utf-8")
        master, slave = os.openpty()
        tty.setraw(slave)
        link = tmp / "tic0"
        link.symlink_to(os.ttyname(slave))
        env = {**os.environ, "ENERBOX_CONFIG": str(_config(tmp, port, link))}
        quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL,
                                 "cwd": ROOT}
        client = mqtt.Client(CallbackAPIVersion.VERSION2)
        topics = Topics("bench", "bench")
        relay_topic = topics.relay_state("living")
        ready = threading.Event()  # shedding follows fresh meter data and relays listen

        def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            if msg.topic == relay_topic:
                states.put({**json.loads(msg.payload), "_at": time.perf_counter()})
            elif msg.payload and json.loads(msg.payload).get("stale") is False:
                ready.set()

        client.on_message = on_message
        client.on_connect = lambda c, *_a: c.subscribe(
            [(relay_topic, 0), (topics.state_of("shedding", "linky"), 0)])
        try:
            procs.append(subprocess.Popen([mosquitto, "-c", str(tmp / "mosquitto.conf")],
                                          **quiet))
            wait_port(port)
            for name in ("relays", "shedding", "teleinfo"):
                procs.append(subprocess.Popen([sys.executable, "-m", f"services.{name}"],
                                              env=env, **quiet))
            client.connect("127.0.0.1", port)
            client.loop_start()
            low = frame(1000)
            deadline = time.monotonic() + 60
            while not ready.wait(0.3):  # meter frames until shedding has fresh data
                if time.monotonic() > deadline:
                    raise TimeoutError("the services did not start within 60 s")
                os.write(master, low)
            while not states.empty():
                states.get()
            return _peaks(master, states, peaks)
        finally:
            client.loop_stop()
            for proc in reversed(procs):
                proc.terminate()
                proc.wait(10)
            os.close(master)
            os.close(slave)


def main() -> None:
    """Print p50/p99."""
    print(f"Shedding latency, last byte of the peak frame -> relay state on MQTT ({PEAKS} peaks):")
    try:
        ms = sorted(measure())
    except (TimeoutError, OSError) as exc:
        print(f"  failed: {exc}")
        return
    p99 = ms[min(len(ms) - 1, round(len(ms) * 0.99) - 1)]
    print(f"  p50 {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms, max {ms[-1]:.1f} ms "
          "(shed on the very frame: every peak was shed before the next frame was written)")

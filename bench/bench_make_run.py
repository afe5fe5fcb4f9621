"""`make run`'s promise, timed: the simulated home's surplus switches the water heater on.

Starts `enerbox sim stack` (what `make run` runs) on a free port in a scratch directory, and
times from the start: the first Linky state, the water heater switched on by the automation
(`source: auto`), and the meter's `net_power_va` before and after it. Ctrl-C (SIGINT) stops it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.net import ROOT, free_port

HEATER, LINKY = "enerbox/relays/water-heater/state", "enerbox/teleinfo/linky/state"
BOUND_S = 300.0


def measure() -> dict[str, Any]:
    """Seconds from the stack's start to the first Linky state and to the heater on."""
    port = free_port()
    history: list[tuple[float, str, dict[str, Any]]] = []
    heater_on, read = threading.Event(), threading.Event()
    frames_after = [0]

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        if not msg.payload:
            return
        state = json.loads(msg.payload)
        history.append((time.monotonic(), msg.topic, state))
        if msg.topic == HEATER and state.get("state") == "on" and state.get("source") == "auto":
            heater_on.set()
        if heater_on.is_set() and msg.topic == LINKY:
            frames_after[0] += 1
            if frames_after[0] >= 3:  # the meter's step, a few frames on
                read.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_message = on_message
    client.on_connect = lambda c, *_a: c.subscribe("enerbox/+/+/state")
    with tempfile.TemporaryDirectory() as run_dir:
        start = time.monotonic()
        stack = subprocess.Popen(
            [sys.executable, "-m", "services.app.cli", "sim", "stack", "--port", str(port),
             "--run-dir", run_dir], cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        try:
            assert stack.stdout is not None
            stack.stdout.readline()  # the banner: the broker listens
            client.connect("127.0.0.1", port)
            client.loop_start()
            if heater_on.wait(BOUND_S):
                read.wait(30)
        finally:
            client.loop_stop()
            stack.send_signal(signal.SIGINT)
            stack.wait(30)
    first = next((t for t, topic, _ in history if topic == LINKY), None)
    on = next(((t, i) for i, (t, topic, s) in enumerate(history) if topic == HEATER
               and s.get("state") == "on" and s.get("source") == "auto"), None)
    out: dict[str, Any] = {"first_linky_s": None if first is None else first - start,
                           "heater_on_s": None if on is None else on[0] - start}
    if on is not None:
        before = [s.get("net_power_va") for _, topic, s in history[:on[1]] if topic == LINKY]
        after = [s.get("net_power_va") for _, topic, s in history[on[1]:] if topic == LINKY]
        out["net_power_va_before"] = before[-1] if before else None
        out["net_power_va_after"] = after[2] if len(after) > 2 else None
    return out


def main() -> None:
    """Print the figures."""
    got = measure()
    print("make run (enerbox sim stack), from its start:")
    first, on = got["first_linky_s"], got["heater_on_s"]
    print(f"  first Linky state {first:.1f} s" if first is not None else "  no Linky state")
    if on is None:
        print(f"  the water heater was NOT switched on by the automation within {BOUND_S:.0f} s")
        return
    print(f"  water heater on by the automation {on:.1f} s  (README says about 70 s); "
          f"net_power_va {got.get('net_power_va_before')} -> {got.get('net_power_va_after')} VA")


if __name__ == "__main__":
    main()

"""API: requests/s on /api/state, MQTT state change -> WebSocket message (p50/p99), RSS."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import websockets
from paho.mqtt.enums import CallbackAPIVersion

from bench.rss import rss_kib

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _requests_per_s(url: str, seconds: float = 5.0, concurrency: int = 20) -> float:
    done = 0
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(timeout=10) as client:

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                (await client.get(url)).raise_for_status()
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - start)


async def _ws_latencies(url: str, publish: Any, count: int = 500) -> list[float]:
    latencies = []
    async with websockets.connect(url) as ws:
        await ws.recv()  # snapshot
        for i in range(count):
            sent = time.perf_counter()
            publish(i)
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if message.get("type") == "state" and message["state"].get("n") == i:
                    latencies.append((time.perf_counter() - sent) * 1000)
                    break
    return latencies


def main() -> None:
    """Print the API figures."""
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    print("API:")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        mqtt_port, api_port = _free_port(), _free_port()
        (tmp / "m.conf").write_text(f"listener {mqtt_port} 127.0.0.1\nallow_anonymous true\n"
                                    "set_tcp_nodelay true\n", encoding="utf-8")
        (tmp / "enerbox.yaml").write_text(json.dumps({
            "general": {"data_dir": str(tmp / "data")}, "mqtt": {"port": mqtt_port},
            "api": {"host": "127.0.0.1", "port": api_port, "token": "bench"}}), encoding="utf-8")
        quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL,
                                 "cwd": ROOT}
        procs = [subprocess.Popen([mosquitto, "-c", str(tmp / "m.conf")], **quiet)]
        time.sleep(0.5)
        env = {**os.environ, "ENERBOX_CONFIG": str(tmp / "enerbox.yaml")}
        procs.append(subprocess.Popen([sys.executable, "-m", "services.api"], env=env, **quiet))
        client = mqtt.Client(CallbackAPIVersion.VERSION2)
        try:
            time.sleep(2.5)
            client.connect("127.0.0.1", mqtt_port)
            client.loop_start()
            for i in range(30):  # a realistic box: 30 devices in the state
                client.publish(f"enerbox/dev/d{i}/state", json.dumps({"power_w": i, "n": -1}))
            time.sleep(0.5)
            base = f"http://127.0.0.1:{api_port}"
            if shutil.which("wrk"):  # a load generator that is not itself the bottleneck
                out = subprocess.run(["wrk", "-t2", "-c20", "-d8s", f"{base}/api/state"],
                                     capture_output=True, text=True, check=False).stdout
                rate = float(out.split("Requests/sec:")[1].split()[0]) if "Requests/sec:" in out \
                    else 0.0
                how = "wrk, 20 connections"
            else:
                rate = asyncio.run(_requests_per_s(f"{base}/api/state"))
                how = "20 Python clients in one process: client-bound; install wrk for more"
            print(f"  {rate:>10,.0f} requests/s  GET /api/state, 30 devices ({how})")

            def publish(i: int) -> None:
                client.publish("enerbox/teleinfo/linky/state",
                               json.dumps({"apparent_power_va": i, "n": i}))

            ms = sorted(asyncio.run(_ws_latencies(f"ws://127.0.0.1:{api_port}/api/ws", publish)))
            p99 = ms[round(len(ms) * 0.99) - 1]
            print(f"  p50 {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms  MQTT state change "
                  f"-> WebSocket message ({len(ms)} changes)")
            rss, hwm = rss_kib(procs[1].pid)
            print(f"  RSS {rss / 1024:.1f} MB (peak {hwm / 1024:.1f} MB)  api service")
        finally:
            client.loop_stop()
            for proc in reversed(procs):
                proc.terminate()
                proc.wait(10)

"""API: requests/s on /api/state, MQTT state change -> WebSocket message (p50/p99), RSS."""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import time
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import websockets
from paho.mqtt.enums import CallbackAPIVersion

from bench.net import api_stack
from bench.rss import rss_kib
from services.core.contract import Topics


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
    print("API:")
    with api_stack() as stack:
        client = mqtt.Client(CallbackAPIVersion.VERSION2)
        client.connect("127.0.0.1", stack.mqtt_port)
        client.loop_start()
        try:
            topics = Topics("enerbox", "bench")
            for i in range(30):  # a realistic box: 30 devices in the state
                client.publish(topics.state_of("dev", f"d{i}"),
                               json.dumps({"power_w": i, "n": -1}), qos=1,
                               retain=True).wait_for_publish(5)  # whenever the api listens
            base = f"http://127.0.0.1:{stack.api_port}"
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
                client.publish(topics.state_of("teleinfo", "linky"),
                               json.dumps({"apparent_power_va": i, "n": i}))

            ms = sorted(asyncio.run(_ws_latencies(f"ws://127.0.0.1:{stack.api_port}/api/ws",
                                                  publish)))
            p99 = ms[round(len(ms) * 0.99) - 1]
            print(f"  p50 {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms  MQTT state change "
                  f"-> WebSocket message ({len(ms)} changes)")
            rss, hwm = rss_kib(stack.api_pid)
            print(f"  RSS {rss / 1024:.1f} MB (peak {hwm / 1024:.1f} MB)  api service")
        finally:
            client.loop_stop()



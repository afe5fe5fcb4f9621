"""A relays service on a real mosquitto, fake boards, and the means to poke at it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from paho.mqtt import publish

from services.app.root_config import EnerboxConfig, root_model, shared
from services.core.bus import Bus, Inbound
from services.core.config import MqttConfig
from services.core.contract import CommandReply, Rejection
from services.relays.drivers.fake_smbus import FakeSMBus
from services.relays.service import RelaysService
from tests.conftest import Broker, Watcher

MCP = 0x20
ROOT = Path(__file__).resolve().parents[2]
# Remora mapping on (a, b): confort 00, eco 11, hors-gel 10, arret 01.
PAIRS = {"confort": (0, 0), "eco": (1, 1), "hors-gel": (1, 0), "arret": (0, 1)}


class Clock:
    """Wall clock the test can move forward (forced-mode expiry)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def config_data(tmp_path: Path, broker: Broker, prefix: str, **relays: Any) -> dict[str, Any]:
    """The test configuration as plain data (also written to a file for subprocesses)."""
    board_file = tmp_path / "board.json"
    return {
        "general": {"data_dir": str(tmp_path / "data")},
        "mqtt": {"host": broker.host, "port": broker.port, "prefix": prefix},
        "homeassistant": {"discovery_prefix": f"{prefix}/ha"},
        "relays": {
            "boards": [
                {"id": "gpio", "driver": "gpio"},
                {"id": "remora", "driver": "mcp23017", "bus": f"fake:{board_file}",
                 "address": MCP},
            ],
            "relays": [
                {"id": "water-heater", "board": "gpio", "channel": 17, "active_low": True},
                {"id": "pump", "board": "gpio", "channel": 27, "min_off_s": 30},
                {"id": "living", "kind": "fil_pilote", "board": "remora", "channels": [0, 1]},
                {"id": "bedroom", "kind": "fil_pilote", "board": "remora", "channels": [2, 3],
                 "default": "eco"},
            ],
            "reassert_interval_s": 0.3,
            # Tests about the fail-safe set a short one; the others have no shedding.
            "shedding_grace_s": 3600,
            **relays,
        },
    }


def make_config(tmp_path: Path, broker: Broker, prefix: str, **relays: Any) -> EnerboxConfig:
    """The validated configuration."""
    return root_model().model_validate(config_data(tmp_path, broker, prefix, **relays))


class Requester:
    """What the api does: a command with a response topic and correlation data, and the
    reply matched by that correlation."""

    def __init__(self, mqtt: MqttConfig) -> None:
        self.bus = Bus(mqtt, "api")
        self.replies: dict[bytes, CommandReply | Rejection] = {}
        self.arrived = threading.Condition()
        self.bus.subscribe_inbound(self.bus.topics.replies, self._reply)
        self.bus.start()
        assert self.bus.wait_connected(10)

    def _reply(self, inbound: Inbound) -> None:
        if inbound.correlation is not None:
            with self.arrived:
                self.replies[inbound.correlation] = CommandReply.decode(inbound.payload)
                self.arrived.notify_all()

    def command(self, relay: str, payload: str | bytes, timeout: float = 10) -> CommandReply:
        """Send and wait for the answer."""
        correlation = uuid.uuid4().bytes
        self.bus.request(self.bus.topics.relay_set(relay), payload, correlation)
        with self.arrived:
            assert self.arrived.wait_for(lambda: correlation in self.replies, timeout), (
                f"no reply to {payload!r} on {relay}")
            reply = self.replies.pop(correlation)
        assert isinstance(reply, CommandReply), reply
        return reply

    def stop(self) -> None:
        """Disconnect."""
        self.bus.stop()


class Harness:
    """A running RelaysService and the means to poke at it."""

    def __init__(self, config: EnerboxConfig, clock: Clock, watcher: Watcher, broker: Broker,
                 prefix: str) -> None:
        self.config, self.clock, self.w, self.broker, self.prefix = (
            config, clock, watcher, broker, prefix)
        self.service: RelaysService | None = None
        self._requester: Requester | None = None

    def start(self) -> RelaysService:
        """Build and start the service (its bus connected first, as the runner does)."""
        bus = Bus(self.config.mqtt, "relays")
        self.service = RelaysService(shared(self.config, self.config.relays), bus,
                                     clock=self.clock)
        bus.start()
        assert bus.wait_connected(10)
        self.service.start()
        return self.service

    def stop(self, clean: bool = True) -> None:
        """Stop it (``clean=False``: as a crash would, nothing written at exit)."""
        if self._requester is not None:
            self._requester.stop()
            self._requester = None
        if self.service is None:
            return
        if clean:
            self.service.stop()
        else:
            self.service.stop_event.set()
            self.service.thread.join(5)
            for board in self.service.boards.values():  # the process's pins die with it
                board.close()
        self.service.bus.stop()
        self.service = None

    def publish(self, topic: str, payload: str | bytes, retain: bool = False) -> None:
        """One message from an outside client."""
        publish.single(topic, payload, qos=1, retain=retain, hostname=self.broker.host,
                       port=self.broker.port)

    def send(self, relay: str, payload: str | bytes, leaf: str = "set",
             retain: bool = False) -> None:
        """A message on one of a relay's input topics."""
        self.publish(f"{self.prefix}/relays/{relay}/{leaf}", payload, retain)

    def command(self, relay: str, payload: str | bytes) -> CommandReply:
        """A command answered with a CommandReply (MQTT v5 request/response)."""
        if self._requester is None:
            self._requester = Requester(self.config.mqtt)
        return self._requester.command(relay, payload)

    def state(self, relay: str, pred: Callable[[dict[str, Any]], bool],
              timeout: float = 10, after: int = 0) -> dict[str, Any]:
        """The first state of ``relay`` matching ``pred``."""
        topic = f"{self.prefix}/relays/{relay}/state"
        msg = self.w.wait_for(lambda m: m.topic == topic and bool(m.payload)
                              and pred(json.loads(m.payload)), timeout, after)
        data: dict[str, Any] = json.loads(msg.payload)
        return data

    def event(self, kind: str, timeout: float = 10, after: int = 0) -> dict[str, Any]:
        """The first relays event of this type."""
        msg = self.w.wait_for(lambda m: m.topic.endswith("/relays/events")
                              and json.loads(m.payload)["type"] == kind, timeout, after)
        data: dict[str, Any] = json.loads(msg.payload)
        return data


def board(tmp_path: Path) -> FakeSMBus:
    """Another view of the fake board the service drives."""
    return FakeSMBus(tmp_path / "board.json")


def olat(tmp_path: Path) -> int:
    """Port A's latch."""
    return board(tmp_path).read_byte_data(MCP, 0x14)


def zone(tmp_path: Path, first: int) -> tuple[int, int]:
    """A zone's (a, b) levels on port A."""
    latch = olat(tmp_path)
    return (latch >> first) & 1, (latch >> (first + 1)) & 1


class Proc:
    """A ``python -m`` subprocess with its output in a log file; killed at the end."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.args, self.log_path = args, log
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        """Start it."""
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, *self.args], cwd=ROOT,
                                         stdout=out, stderr=subprocess.STDOUT, env=self.env)
        return self

    def kill9(self) -> None:
        """SIGKILL: no clean stop, no offline status written (the last will is)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """Terminate if still running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def log(self) -> str:
        """What it printed."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

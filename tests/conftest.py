"""Shared test fixtures: a real mosquitto on a free port, a topic prefix per test, captures."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

ROOT = Path(__file__).resolve().parents[1]
RUN_ID = uuid.uuid4().hex[:8]


def _shared_dir() -> Path | None:
    """$ENERBOX_SHARED, else ../shared next to the checkout: test data only, never copied."""
    env = os.environ.get("ENERBOX_SHARED")
    shared = Path(env) if env else ROOT.parent / "shared"
    return shared if (shared / "fixtures").is_dir() else None


SHARED = _shared_dir()
NO_SHARED = "../shared/fixtures not found next to the checkout (set ENERBOX_SHARED): " \
    "capture tests skipped"


def fixture(protocol: str, name: str) -> Path:
    """Path of a capture under ../shared/fixtures; skips the test when ../shared is absent."""
    if SHARED is None:
        pytest.skip(NO_SHARED)
    return SHARED / "fixtures" / protocol / name


def tic_fixture(name: str) -> Path:
    """Path of a TIC capture."""
    return fixture("teleinfo", name)


def vedirect_fixture(name: str) -> Path:
    """Path of a VE.Direct capture."""
    return fixture("vedirect", name)


def wait_until(check: Callable[[], object], timeout: float = 30.0, what: str = "") -> None:
    """Wait until ``check()`` is true (an event seen from outside: a file, a count, a flag),
    failing with ``what`` after ``timeout``. The one polling loop of the tests."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what or "condition not met in time"
        time.sleep(0.02)  # the poll interval of a condition wait, not a fixed delay


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if found is None:
        pytest.fail("mosquitto is not installed: run `make test`, which installs it")
    return found


class Broker:
    """A mosquitto process owned by the test session; can be stopped and restarted."""

    def __init__(self, workdir: Path) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "set_tcp_nodelay true\n"
            "log_dest stderr\nlog_type error\n",
            encoding="utf-8",
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start mosquitto and wait until it accepts connections."""
        self.proc = subprocess.Popen(
            [_mosquitto_binary(), "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        """Stop mosquitto (its retained messages are lost: persistence is off)."""
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A real mosquitto for the whole session."""
    b = Broker(tmp_path_factory.mktemp("mosquitto"))
    b.start()
    yield b
    b.stop()


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """A topic prefix of this test's own: runs and tests never see each other's messages."""
    name = re.sub(r"[^a-z0-9_-]+", "-", request.node.name.lower())[:60].strip("-")
    return f"enerbox-test/{RUN_ID}/{name}"


@dataclass
class Message:
    """A message as a subscriber saw it."""

    topic: str
    payload: bytes
    retain: bool
    expiry: int | None


@dataclass
class Watcher:
    """A real MQTT client recording everything under a filter."""

    client: mqtt.Client
    messages: list[Message] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(
        self, predicate: Callable[[Message], bool], timeout: float = 15.0, after: int = 0
    ) -> Message:
        """First message (from index ``after``) matching the predicate, waiting if needed."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                for msg in self.messages[after:]:
                    if predicate(msg):
                        return msg
            if time.monotonic() > deadline:
                with self.lock:
                    seen = sorted({m.topic for m in self.messages})
                raise AssertionError(f"no matching message in {timeout} s; topics seen: {seen}")
            time.sleep(0.02)

    def topic(self, topic: str, timeout: float = 15.0, after: int = 0) -> Message:
        """First message on exactly this topic."""
        return self.wait_for(lambda m: m.topic == topic, timeout, after)

    def payload(self, topic: str, payload: bytes, timeout: float = 15.0, after: int = 0) -> Message:
        """First message on this topic with this payload."""
        return self.wait_for(lambda m: m.topic == topic and m.payload == payload, timeout, after)

    def count(self) -> int:
        """How many messages so far (an index for ``after``)."""
        with self.lock:
            return len(self.messages)


@pytest.fixture
def watch(broker: Broker) -> Iterator[Callable[[str], Watcher]]:
    """Factory: subscribe a fresh client to a filter and record what arrives."""
    clients: list[mqtt.Client] = []

    def make(topic_filter: str) -> Watcher:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        watcher = Watcher(client)
        subscribed = threading.Event()

        def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            props = getattr(msg, "properties", None)
            expiry = getattr(props, "MessageExpiryInterval", None) if props else None
            with watcher.lock:
                watcher.messages.append(Message(msg.topic, bytes(msg.payload), msg.retain, expiry))

        def on_connect(c: mqtt.Client, *_args: object) -> None:
            c.subscribe(topic_filter, qos=1)

        client.on_message = on_message
        client.on_connect = on_connect
        client.on_subscribe = lambda *_a: subscribed.set()
        client.connect(broker.host, broker.port)
        client.loop_start()
        assert subscribed.wait(5), "watcher could not subscribe"
        clients.append(client)
        return watcher

    yield make
    for client in clients:
        client.disconnect()
        client.loop_stop()

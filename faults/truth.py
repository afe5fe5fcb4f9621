"""Ground truth: every MQTT message under the prefix, and every state of the fake boards.

Both are timestamped with time.monotonic() as they are seen, so a scenario measures from the
moment it struck to the moment the outside world (broker, board file) showed the result.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

# Fil pilote (a, b) output levels -> order, as services/relays/drivers/fil_pilote.py maps them.
_ORDERS = {(False, False): "confort", (True, True): "eco", (True, False): "hors-gel",
           (False, True): "arret"}
_MCP_IODIRA, _MCP_OLATA = 0x00, 0x14


@dataclass(frozen=True)
class Seen:
    """One MQTT message as the ground-truth subscriber saw it."""

    at: float
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> dict[str, Any] | None:
        """The payload as a JSON object, None when it is not one."""
        try:
            data = json.loads(self.payload)
        except (ValueError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None


def client(name: str) -> mqtt.Client:
    """A paho 2 client speaking MQTT v5, with a unique id."""
    return mqtt.Client(CallbackAPIVersion.VERSION2,
                       client_id=f"faults-{name}-{uuid.uuid4().hex[:6]}",
                       protocol=MQTTProtocolVersion.MQTTv5)


class Recorder:
    """Subscribes to ``<prefix>/#`` and keeps every message with the time it arrived."""

    def __init__(self, port: int, prefix: str) -> None:
        self.prefix = prefix
        self.messages: list[Seen] = []
        self.lock = threading.Lock()
        self.client = client("truth")
        subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_a: c.subscribe(f"{prefix}/#", qos=1)
        self.client.on_subscribe = lambda *_a: subscribed.set()
        # A durable session, as the historian's: a broker restart that keeps sessions keeps
        # what was published for us while we reconnected.
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 86400
        self.client.reconnect_delay_set(1, 2)
        self.client.connect("127.0.0.1", port, clean_start=False, properties=props)
        self.client.loop_start()
        if not subscribed.wait(10):
            raise RuntimeError("ground-truth subscriber could not subscribe")
        # Publishes go through a second client: a 1 MB publish must not delay what we record.
        self.pub = client("pub")
        self.pub.connect("127.0.0.1", port)
        self.pub.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        seen = Seen(time.monotonic(), msg.topic, bytes(msg.payload), bool(msg.retain))
        with self.lock:
            self.messages.append(seen)

    def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> float:
        """Publish under the prefix (QoS 1, waits until the broker has it); returns when."""
        info = self.pub.publish(f"{self.prefix}/{topic}", payload, qos=1, retain=retain)
        info.wait_for_publish(30)
        return time.monotonic()

    def wait_for(self, predicate: Callable[[Seen], bool], timeout: float,
                 after: float = 0.0) -> Seen | None:
        """First message seen at or after ``after`` that matches, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                found = next((m for m in self.messages if m.at >= after and predicate(m)), None)
            if found is not None or time.monotonic() > deadline:
                return found
            time.sleep(0.01)

    def last(self, topic: str, before: float = float("inf")) -> Seen | None:
        """The latest message on a full topic seen before ``before``."""
        with self.lock:
            return next((m for m in reversed(self.messages)
                         if m.topic == topic and m.at < before), None)

    def close(self) -> None:
        """Disconnect both clients."""
        for c in (self.client, self.pub):
            c.disconnect()
            c.loop_stop()


def retained(port: int, topic_filter: str, settle_s: float = 0.3) -> list[Seen]:
    """What a newcomer gets for ``topic_filter``: the retained messages right now."""
    got: list[Seen] = []
    done = threading.Event()
    c = client("newcomer")
    c.on_message = lambda _c, _u, m: got.append(
        Seen(time.monotonic(), m.topic, bytes(m.payload), bool(m.retain)))
    c.on_connect = lambda cl, *_a: cl.subscribe(topic_filter, qos=1)
    c.on_subscribe = lambda *_a: done.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        done.wait(5)
        time.sleep(settle_s)  # retained messages follow the SUBACK at once on loopback
    finally:
        c.disconnect()
        c.loop_stop()
    return [m for m in got if m.retain]


@dataclass(frozen=True)
class BoardLoad:
    """Where a load sits on a fake board: a switch (one pin) or a fil pilote zone (two)."""

    relay: str
    file: Path
    address: int
    kind: str  # "pcf8574" or "mcp23017"
    channels: tuple[int, ...]
    active_low: bool = False

    def decode(self, boards: dict[Path, dict[str, Any]]) -> str | None:
        """The load's state as the hardware holds it: on/off or an order; None if unknown."""
        chip = boards.get(self.file, {}).get(f"0x{self.address:02x}")
        if not isinstance(chip, dict):
            return None
        regs = chip.get("regs", [])
        levels = [self._level(regs, ch) for ch in self.channels]
        if len(levels) == 1:
            return "on" if levels[0] != self.active_low else "off"
        return _ORDERS[(levels[0], levels[1])]

    def _level(self, regs: list[int], channel: int) -> bool:
        if self.kind == "pcf8574":
            return bool(regs[0] >> channel & 1)
        port, bit = divmod(channel, 8)
        # A pin still configured as an input drives nothing: the opto is off.
        driven = not regs[_MCP_IODIRA + port] >> bit & 1
        return driven and bool(regs[_MCP_OLATA + port] >> bit & 1)


@dataclass
class BoardWatcher:
    """Polls the fake boards' files (they are replaced on every change) every ``period_s``."""

    loads: list[BoardLoad]
    period_s: float = 0.002
    history: list[tuple[float, dict[str, str | None]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    versions: int = 0  # file versions seen (each write to a fake board replaces its file)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="board-watch", daemon=True)

    def start(self) -> None:
        """Start polling."""
        self._thread.start()

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        self._thread.join(2)

    def _run(self) -> None:
        files = sorted({ld.file for ld in self.loads})
        marks: dict[Path, tuple[int, int, int]] = {}
        boards: dict[Path, dict[str, Any]] = {}
        while not self._stop.is_set():
            changed = False
            for f in files:
                try:
                    st = f.stat()
                    mark = (st.st_ino, st.st_mtime_ns, st.st_size)
                    if marks.get(f) == mark:
                        continue
                    boards[f] = json.loads(f.read_text(encoding="utf-8"))
                    marks[f] = mark
                    changed = True
                    self.versions += 1
                except (OSError, ValueError):
                    continue
            if changed:
                now = time.monotonic()
                state = {ld.relay: ld.decode(boards) for ld in self.loads}
                with self.lock:
                    if not self.history or self.history[-1][1] != state:
                        self.history.append((now, state))
            self._stop.wait(self.period_s)

    def current(self) -> dict[str, str | None]:
        """The latest decoded state of every load."""
        with self.lock:
            return dict(self.history[-1][1]) if self.history else {}

    def since(self, after: float) -> list[tuple[float, dict[str, str | None]]]:
        """Every distinct state seen from ``after`` on (with the one in force at ``after``)."""
        with self.lock:
            before = [h for h in self.history if h[0] < after][-1:]
            return before + [h for h in self.history if h[0] >= after]

    def first(self, relay: str, value: str, after: float, timeout: float) -> float | None:
        """When ``relay`` was first seen at ``value`` from ``after`` on (waiting if needed)."""
        deadline = time.monotonic() + timeout
        while True:
            for at, state in self.since(after):
                if state.get(relay) == value:
                    return max(at, after)
            if time.monotonic() > deadline:
                return None
            time.sleep(0.01)

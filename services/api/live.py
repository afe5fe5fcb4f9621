"""Live state from MQTT, kept in memory and fanned out to WebSocket clients.

MQTT callbacks run on paho's thread; they update the store under a lock and hand each
change to the asyncio loop with ``call_soon_threadsafe``. Every client has a bounded
queue: a client that does not keep up is dropped, never slowing the others.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from services.api.automation import AutomationReading
from services.api.replies import Replies
from services.core.bus import Bus
from services.core.contract import DeviceState, Event, Presence, Rejection, TopicKind, Topics
from services.core.contract.topics import Topic

CLIENT_QUEUE = 256
EVENTS_KEPT = 200
AUTOMATED_KEPT = 256  # automation states kept: far more relays than a box has, yet bounded
AUTOMATION = "automation"  # the service whose <p>/automation/<relay>/state the relays show
# Services whose devices show rather than measure: availability only, never a state (a
# display "hall" online with no state is fine, not stale).
NO_STATE = frozenset({"display"})


@dataclass
class Device:
    """What the API knows of one device."""

    service: str
    device: str
    availability: str | None = None
    state: dict[str, Any] | None = None
    received: float | None = None  # monotonic time of the last state


@dataclass
class Live:
    """The store and the fan-out."""

    stale_after_s: float = 30.0
    devices: dict[tuple[str, str], Device] = field(default_factory=dict)
    relays: dict[str, dict[str, Any]] = field(default_factory=dict)
    shedding: dict[str, Any] | None = None
    services: dict[str, str] = field(default_factory=dict)
    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=EVENTS_KEPT))
    loop: asyncio.AbstractEventLoop | None = None
    clients: set[asyncio.Queue[dict[str, Any] | None]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    replies: Replies = field(default_factory=Replies)
    automation: dict[str, AutomationReading] = field(default_factory=dict)
    # Switch requests waiting for the automation's state to say enabled == wanted.
    switch_waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None], bool]]]\
        = field(default_factory=dict)

    def attach(self, bus: Bus) -> None:
        """Subscribe to everything the API shows."""
        topics = self.topics = bus.topics
        # With its message expiry: an automation state is stale once that has run out.
        bus.subscribe_inbound(topics.any_device(TopicKind.STATE),
                              lambda m: self._state(m.topic, m.payload, m.expiry_s))
        bus.subscribe(topics.any_device(TopicKind.AVAILABILITY), self._availability)
        bus.subscribe(topics.any_service(TopicKind.STATUS), self._status)
        bus.subscribe(topics.any_service(TopicKind.EVENTS), self._event)
        self.replies.attach(bus)

    # -- MQTT side (paho thread) --------------------------------------------------------------

    topics: Topics | None = None

    def _parse(self, topic: str) -> Topic | None:
        return None if self.topics is None else self.topics.parse(topic)

    def _state(self, topic: str, payload: bytes, expiry_s: int | None = None) -> None:
        parsed = self._parse(topic)
        if parsed is not None and parsed.device is not None and parsed.service == AUTOMATION:
            self._automation(parsed.device, payload, expiry_s)
            return
        decoded = DeviceState.decode(payload)
        if parsed is None or parsed.device is None or isinstance(decoded, Rejection):
            return  # a cleared (empty) retained state, or one no consumer could trust
        service, device = parsed.service, parsed.device
        data = dict(decoded.fields)
        if decoded.ts is not None:
            data["ts"] = decoded.ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        with self.lock:
            if service == "relays":
                self.relays[device] = data
                message: dict[str, Any] = {"type": "relay", "id": device, "state": data}
            elif service == "shedding":
                self.shedding = data
                message = {"type": "shedding", "shedding": data}
            else:
                entry = self.devices.setdefault((service, device), Device(service, device))
                entry.state, entry.received = data, time.monotonic()
                message = {"type": "state", "service": service, "device": device, "state": data}
        self.publish(message)

    def _automation(self, relay: str, payload: bytes, expiry_s: int | None) -> None:
        """The automation's state for a relay; an empty retained one: it no longer drives it.
        A message that is not a state with a known status is ignored (the last good kept)."""
        reading: AutomationReading | None = None
        if payload:
            decoded = DeviceState.decode(payload)
            if isinstance(decoded, Rejection):
                return
            reading = AutomationReading.read(decoded, expiry_s, time.monotonic())
            if reading is None:
                return
        with self.lock:
            if reading is None:
                if self.automation.pop(relay, None) is None:
                    return
            elif relay in self.automation or len(self.automation) < AUTOMATED_KEPT:
                self.automation[relay] = reading
            else:
                return
            waiters = self.switch_waiters.get(relay, [])
            done = [w for w in waiters if reading is not None and reading.enabled == w[2]]
            self.switch_waiters[relay] = [w for w in waiters if w not in done]
        for loop, future, _ in done:
            loop.call_soon_threadsafe(_resolve, future)
        self.publish({"type": "relay", "id": relay})

    def _availability(self, topic: str, payload: bytes) -> None:
        parsed = self._parse(topic)
        presence = Presence.decode(payload)
        if parsed is None or parsed.device is None or isinstance(presence, Rejection):
            return
        service, device = parsed.service, parsed.device
        value = None if not payload.strip() else "online" if presence.online else "offline"
        with self.lock:
            self.devices.setdefault((service, device), Device(service, device)).availability = value
        self.publish({"type": "availability", "service": service, "device": device,
                      "availability": value})

    def _status(self, topic: str, payload: bytes) -> None:
        parsed = self._parse(topic)
        presence = Presence.decode(payload)
        if parsed is None or isinstance(presence, Rejection):
            return
        service = parsed.service
        value = "online" if presence.online else "offline"
        with self.lock:
            self.services[service] = value
            automated = list(self.automation) if service == AUTOMATION else []
        self.publish({"type": "status", "service": service, "status": value})
        for relay in automated:  # their stale flag follows the automation's status
            self.publish({"type": "relay", "id": relay})

    def _event(self, topic: str, payload: bytes) -> None:
        parsed = self._parse(topic)
        event = Event.decode(payload)
        if parsed is None or isinstance(event, Rejection):
            return
        data = {"service": parsed.service, **event.data, "type": event.kind.value,
                "ts": event.ts}
        with self.lock:
            self.events.append(data)
        self.publish({"type": "event", "event": data})

    # -- asyncio side -------------------------------------------------------------------------

    def publish(self, message: dict[str, Any]) -> None:
        """Hand a change to every WebSocket client (from any thread)."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._fan_out, message)

    def _fan_out(self, message: dict[str, Any]) -> None:
        for queue in list(self.clients):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:  # too slow: dropped, the others go on
                self.clients.discard(queue)
                _drain(queue)
                queue.put_nowait(None)

    def subscribe(self) -> asyncio.Queue[dict[str, Any] | None]:
        """A new client's queue (a None in it means: you were dropped)."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(CLIENT_QUEUE)
        self.clients.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        """A client went away."""
        self.clients.discard(queue)

    # -- reading ------------------------------------------------------------------------------

    def device_view(self, d: Device) -> dict[str, Any]:
        """A device as the API shows it, with its age and staleness."""
        age = None if d.received is None else time.monotonic() - d.received
        if d.service in NO_STATE and d.state is None:
            stale = d.availability != "online"
        else:
            stale = age is None or age > self.stale_after_s or d.availability == "offline"
        return {"service": d.service, "device": d.device, "availability": d.availability,
                "state": d.state, "age_s": None if age is None else round(age, 1),
                "stale": stale}

    def snapshot(self) -> dict[str, Any]:
        """Everything, for GET /api/state and the WebSocket's first message."""
        with self.lock:
            return {
                "services": dict(self.services),
                "devices": [self.device_view(d) for _, d in sorted(self.devices.items())],
                "relays": dict(self.relays),
                "shedding": self.shedding,
            }

    def automation_view(self, relay: str) -> dict[str, Any] | None:
        """A relay's automation as the api shows it, None when none drives it."""
        with self.lock:
            reading = self.automation.get(relay)
            offline = self.services.get(AUTOMATION) == "offline"
        return None if reading is None else reading.view(time.monotonic(), offline)

    async def wait_enabled(self, relay: str, wanted: bool, timeout_s: float) -> bool:
        """Until the automation's state for the relay says ``enabled == wanted`` (True), or
        ``timeout_s`` passed (False)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        waiter = (loop, future, wanted)
        with self.lock:
            reading = self.automation.get(relay)
            if reading is not None and reading.enabled == wanted:
                return True
            self.switch_waiters.setdefault(relay, []).append(waiter)
        try:
            await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            return False
        finally:
            with self.lock:
                left = [w for w in self.switch_waiters.get(relay, []) if w is not waiter]
                if left:
                    self.switch_waiters[relay] = left
                else:
                    self.switch_waiters.pop(relay, None)
        return True

    def recent_events(self, limit: int) -> list[dict[str, Any]]:
        """The last events, oldest first."""
        with self.lock:
            return list(self.events)[-limit:]


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _drain(queue: asyncio.Queue[Any]) -> None:
    while not queue.empty():
        queue.get_nowait()

"""Relay commands as MQTT v5 requests: each carries a correlation id and the api's reply
topic, and the relays service answers exactly that request (no matching by time)."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid

from services.core.bus import Bus, Inbound
from services.core.contract import CommandReply, Rejection, RelayCommand

log = logging.getLogger(__name__)
MAX_PENDING = 256  # requests in flight; beyond that the api answers 503 rather than queue


class TooManyPendingError(RuntimeError):
    """More commands in flight than the api keeps track of."""


class Replies:
    """Pending requests by correlation id, completed from paho's thread."""

    def __init__(self) -> None:
        self._pending: dict[bytes, tuple[asyncio.AbstractEventLoop, asyncio.Future[CommandReply]]]
        self._pending = {}
        self._lock = threading.Lock()
        self._bus: Bus | None = None

    def attach(self, bus: Bus) -> None:
        """Listen on this service's reply topic."""
        self._bus = bus
        bus.subscribe_inbound(bus.topics.replies, self._on_reply)

    async def send(self, relay_id: str, command: RelayCommand, timeout_s: float) -> CommandReply:
        """Publish the command and wait for its answer; TimeoutError when none comes."""
        if self._bus is None:
            raise RuntimeError("Replies.attach() was not called")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[CommandReply] = loop.create_future()
        correlation = uuid.uuid4().bytes
        with self._lock:
            if len(self._pending) >= MAX_PENDING:
                raise TooManyPendingError(f"{MAX_PENDING} commands already waiting for an answer")
            self._pending[correlation] = (loop, future)
        try:
            self._bus.request(self._bus.topics.relay_set(relay_id), command.encode(), correlation)
            return await asyncio.wait_for(future, timeout_s)
        finally:
            with self._lock:
                self._pending.pop(correlation, None)

    def _on_reply(self, message: Inbound) -> None:
        if message.correlation is None:
            return
        with self._lock:
            waiting = self._pending.get(message.correlation)
        if waiting is None:
            return  # late (timed out) or not ours
        reply = CommandReply.decode(message.payload)
        if isinstance(reply, Rejection):
            log.warning("service=api unreadable command reply: %s", reply.reason)
            return
        loop, future = waiting
        loop.call_soon_threadsafe(_complete, future, reply)


def _complete(future: asyncio.Future[CommandReply], reply: CommandReply) -> None:
    if not future.done():
        future.set_result(reply)

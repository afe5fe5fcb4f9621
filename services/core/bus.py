"""The MQTT bus every service talks through: paho-mqtt 2, MQTT v5.

What it guarantees to services (DESIGN.md, 'MQTT contract'):
- a retained ``status`` online/offline, with a last will for crashes;
- subscriptions made in on_connect, so a broker restart loses none;
- every retained message the service published is re-published after a reconnect (the
  broker may have lost its store), with what is left of its message expiry;
- every state also on its ``journal`` twin, held in order while the broker or the historian
  is away and replayed after a reconnection (``services.core.journal``);
- reconnection with a bounded backoff, forever, without the service noticing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from services.core.config import MqttConfig
from services.core.contract import Event, EventKind, TopicKind, Topics
from services.core.contract.messages import to_json, utc_now_iso
from services.core.journal import Journal

log = logging.getLogger(__name__)

# CONNACK reason codes that mean "wrong credentials" (MQTT v5: bad user name or password,
# not authorized; v3.1.1's 4 and 5 arrive as these too).
_AUTH_REFUSED = {0x86, 0x87}

# A durable session holds its acks until the message is stored (``subscribe_acked``): the
# broker may send this many meanwhile.
DURABLE_RECEIVE_MAXIMUM = 4096

Handler = Callable[[str, bytes], None]
Ack = Callable[[], None]
AckedHandler = Callable[[str, bytes, Ack], None]
Payload = str | bytes


__all__ = ["Bus", "Inbound", "to_json", "utc_now_iso"]


@dataclass(frozen=True, slots=True)
class Inbound:
    """A received message with the MQTT v5 properties a request carries."""

    topic: str
    payload: bytes
    retain: bool = False
    response_topic: str | None = None
    correlation: bytes | None = None
    expiry_s: int | None = None  # what is left of its message expiry (None: none set)


InboundHandler = Callable[[Inbound], None]


def new_client(
    config: MqttConfig, client_id: str, *, manual_ack: bool = False
) -> mqtt.Client:
    """A paho MQTT v5 client with the settings every enerbox connection shares: credentials,
    reconnection backoff, Nagle off (the Bus and each device's availability connection)."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id[:64],
        protocol=MQTTProtocolVersion.MQTTv5, manual_ack=manual_ack,
    )
    # paho 2.2 logs an ERROR on every loop pass while disconnected: one line per broker
    # outage is ours to write (SD cards wear out), so its own logger stays off.
    client.disable_logger()
    if config.username:
        password = config.password.get_secret_value() if config.password else None
        client.username_pw_set(config.username, password)
    client.reconnect_delay_set(min_delay=1, max_delay=config.reconnect_max_s)
    client.on_socket_open = _no_delay
    return client


def _no_delay(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
    # Nagle's algorithm holds a small publish back until the previous one is acked
    # (40 ms with delayed ACKs): a shed command must not wait for that.
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclass(slots=True)
class _Retained:
    payload: Payload
    expiry_s: int | None
    published_at: float


class Bus:
    """One MQTT connection for one service."""

    def __init__(
        self,
        config: MqttConfig,
        service: str,
        client_id: str | None = None,
        durable_session_s: int | None = None,
    ) -> None:
        """``durable_session_s``: keep an MQTT session that long across disconnects, with a
        stable client id and manual acknowledgements (see ``subscribe_acked``): the broker
        keeps what arrives while the service is down, and redelivers what it did not ack."""
        self.config = config
        self.topics = Topics(config.prefix, service)
        self.connected = threading.Event()
        self._retained: dict[str, _Retained] = {}
        self._subs: dict[str, SubscribeOptions] = {}
        self._connect_hooks: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        # Held while a retained message is cached and sent, and while a connection re-sends
        # the cache and turns `connected` on: without it a message published between the
        # re-send's snapshot and `connected` was neither re-sent nor sent (a teleinfo port
        # error's diagnostics were lost that way).
        self._retained_lock = threading.Lock()
        self._was_connected = False
        self._generation = 0  # connections so far: acks are only valid on their own
        self._stopping = False
        self.durable_session_s = durable_session_s
        if client_id is None:
            stable = f"enerbox-{service}-{config.prefix.replace('/', '-')}"
            client_id = stable if durable_session_s else (
                f"enerbox-{service}-{socket.gethostname()}-{os.getpid()}")
        # The last connection problem (refused, unreachable), None while connected: for the
        # runner to print; logged once per change, not once per retry.
        self.problem: str | None = None
        self.connect_failures = 0  # failed attempts since the last success
        client = new_client(config, client_id, manual_ack=bool(durable_session_s))
        client.will_set(self.topics.status, "offline", qos=1, retain=True)
        # Bound what paho queues while the broker is away: retained state is re-sent from our
        # own cache on reconnect, so only events wait in this queue.
        client.max_queued_messages_set(1000)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        self._client = client
        recorder = config.recorder or None
        self.journal = Journal(self._send_journal, service, capacity=config.journal_buffer,
                               gated=recorder is not None and recorder != service)
        if self.journal.gated and recorder is not None:
            self.subscribe(self.topics.status_of(recorder),
                           lambda _t, payload: self.journal.recorder_status(payload))

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background; retries until the broker answers."""
        if self.durable_session_s:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self.durable_session_s
            # Unacked messages the broker may have in flight to us: mosquitto 2 takes a v5
            # client's Receive Maximum instead of its max_inflight_messages (20).
            props.ReceiveMaximum = DURABLE_RECEIVE_MAXIMUM
            self._client.connect_async(self.config.host, self.config.port,
                                       self.config.keepalive_s, clean_start=False,
                                       properties=props)
        else:
            self._client.connect_async(self.config.host, self.config.port,
                                       self.config.keepalive_s)
        self._client.loop_start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Publish ``offline`` on purpose (no last will on a clean stop) and disconnect."""
        self._stopping = True
        if self.connected.is_set():
            info = self._client.publish(self.topics.status, "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError):
                log.warning("service=%s could not publish offline status", self.topics.service)
        self._client.disconnect()
        self._client.loop_stop()
        self.connected.clear()

    def wait_connected(self, timeout_s: float) -> bool:
        """Block until connected (used by tools and tests)."""
        return self.connected.wait(timeout_s)

    # -- publishing --------------------------------------------------------------------------

    def publish(self, topic: str, payload: Payload, qos: int = 0) -> None:
        """Non-retained message (events, raw frames)."""
        self._client.publish(topic, payload, qos=qos, retain=False)

    def publish_json(self, topic: str, data: Any, qos: int = 0) -> None:
        """Non-retained JSON message."""
        self.publish(topic, to_json(data), qos)

    def publish_retained(self, topic: str, payload: Payload, expiry_s: int | None = None) -> None:
        """Retained message, remembered and re-published after every reconnect."""
        now = time.monotonic()
        with self._retained_lock:
            with self._lock:
                self._retained[topic] = _Retained(payload, expiry_s, now)
            if self.connected.is_set():
                self._send_retained(topic, payload, expiry_s)

    def publish_state(self, topic: str, data: dict[str, Any] | str,
                      expiry_s: int | None = None) -> None:
        """Retained JSON state with a message expiry (default: the configured one), and the
        same on its journal twin for the historian (no expiry, held across outages)."""
        payload = data if isinstance(data, str) else to_json(data)
        expiry = expiry_s if expiry_s is not None else (self.config.state_expiry_s or None)
        self.publish_retained(topic, payload, expiry)
        self.journal.put(self.topics.journal_of_state(topic), payload.encode())

    def _send_journal(self, topic: str, payload: bytes) -> None:
        self._client.publish(topic, payload, qos=1, retain=False)

    def clear_retained(self, topic: str) -> None:
        """Remove a retained message from the broker and from the re-publish cache."""
        with self._retained_lock:
            with self._lock:
                self._retained.pop(topic, None)
            self._client.publish(topic, b"", qos=1, retain=True)

    def event(self, kind: EventKind | str, **data: Any) -> None:
        """Publish a typed event on ``<p>/<service>/events`` (an unknown kind is a bug)."""
        self.publish(self.topics.events, Event(EventKind(kind), data).encode(), qos=1)

    def request(self, topic: str, payload: Payload, correlation: bytes, qos: int = 1) -> None:
        """Publish a request whose answer comes back on ``topics.replies`` (MQTT v5 response
        topic and correlation data): the answer is matched exactly, never by timing."""
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = self.topics.replies
        props.CorrelationData = correlation
        self._client.publish(topic, payload, qos=qos, retain=False, properties=props)

    def reply(self, request: Inbound, payload: Payload) -> bool:
        """Answer a request on its response topic, when it asked for one under our prefix
        (a response topic elsewhere is ignored: a command must not make us publish anywhere)."""
        target = request.response_topic
        if not target:
            return False
        parsed = self.topics.parse(target)
        if parsed is None or parsed.kind != TopicKind.REPLIES:
            log.info("service=%s ignored response topic %r", self.topics.service, target[:80])
            return False
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        if request.correlation is not None:
            props.CorrelationData = request.correlation
        self._client.publish(target, payload, qos=1, retain=False, properties=props)
        return True

    def start_heartbeat(self, interval_s: float, healthy: Callable[[], bool]) -> None:
        """Publish ``<p>/<service>/heartbeat`` every ``interval_s`` while ``healthy()``: a
        service whose workers died stops beating, so the others can tell (its status alone
        would still say online)."""

        def beat() -> None:
            while not self._stopping:
                if self.connected.is_set() and healthy():
                    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                    props.MessageExpiryInterval = max(1, int(interval_s * 3))
                    self._client.publish(
                        self.topics.heartbeat,
                        to_json({"ts": utc_now_iso(), "interval_s": interval_s}),
                        qos=0, retain=True, properties=props,
                    )
                time.sleep(interval_s)

        threading.Thread(target=beat, name=f"{self.topics.service}-heartbeat",
                         daemon=True).start()

    def _send_retained(self, topic: str, payload: Payload, expiry_s: int | None) -> None:
        props = None
        if expiry_s:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.MessageExpiryInterval = expiry_s
        self._client.publish(topic, payload, qos=1, retain=True, properties=props)

    # -- subscribing -------------------------------------------------------------------------

    def subscribe(self, topic_filter: str, handler: Handler) -> None:
        """Call ``handler(topic, payload)`` for every message on the filter, across reconnects."""
        self.subscribe_inbound(topic_filter, lambda m: handler(m.topic, m.payload))

    def subscribe_inbound(self, topic_filter: str, handler: InboundHandler) -> None:
        """Like ``subscribe``, with the message's retain flag and request properties."""

        def dispatch(_client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
            props = getattr(msg, "properties", None)
            response = getattr(props, "ResponseTopic", None)
            correlation = getattr(props, "CorrelationData", None)
            expiry = getattr(props, "MessageExpiryInterval", None)
            try:
                handler(Inbound(
                    msg.topic, bytes(msg.payload), bool(msg.retain),
                    response if isinstance(response, str) else None,
                    bytes(correlation) if isinstance(correlation, bytes | bytearray) else None,
                    expiry if isinstance(expiry, int) else None,
                ))
            except Exception:
                # A bad message must never kill paho's network thread.
                log.exception("handler failed topic=%s", msg.topic)
            finally:
                if self.durable_session_s:
                    _client.ack(msg.mid, msg.qos)

        self._add_subscription(topic_filter, dispatch, SubscribeOptions(qos=1))

    def subscribe_acked(self, topic_filter: str, handler: AckedHandler) -> None:
        """Like ``subscribe``, but the message is acknowledged to the broker only when the
        handler calls ``ack`` (after it stored the message): needs ``durable_session_s``."""
        client = self._client

        def dispatch(_client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
            mid, qos, generation = msg.mid, msg.qos, self._generation

            def ack() -> None:
                # A packet id belongs to the connection it came on: after a reconnection the
                # broker redelivers (resumed session) or forgot (new one) the message, and the
                # same id may name another message now, which this ack would take as stored.
                if generation == self._generation:
                    client.ack(mid, qos)

            try:
                handler(msg.topic, bytes(msg.payload), ack)
            except Exception:
                log.exception("handler failed topic=%s", msg.topic)
                ack()  # a message that breaks the handler would come back forever

        # retainHandling=1: retained messages only for a new subscription, not again each
        # time the durable session resumes (they were stored the first time).
        self._add_subscription(topic_filter, dispatch, SubscribeOptions(qos=1, retainHandling=1))

    def _add_subscription(
        self, topic_filter: str, dispatch: Callable[[mqtt.Client, Any, mqtt.MQTTMessage], None],
        options: SubscribeOptions,
    ) -> None:
        with self._lock:
            self._subs[topic_filter] = options
        self._client.message_callback_add(topic_filter, dispatch)
        if self.connected.is_set():
            self._client.subscribe(topic_filter, options=options)

    def unsubscribe(self, topic_filter: str) -> None:
        """Drop a subscription, here and in the broker's session (a durable session keeps the
        subscriptions of an older version until told)."""
        with self._lock:
            self._subs.pop(topic_filter, None)
        self._client.message_callback_remove(topic_filter)
        if self.connected.is_set():
            self._client.unsubscribe(topic_filter)

    def on_connected(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` after every (re)connection, once subscriptions and state are back."""
        self._connect_hooks.append(hook)

    # -- paho callbacks (network thread) -----------------------------------------------------

    def _set_problem(self, problem: str, level: int) -> None:
        self.connect_failures += 1
        if problem != self.problem:
            self.problem = problem
            log.log(level, "service=%s %s", self.topics.service, problem)

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        # paho calls this from inside its `except OSError` (connect_async + loop_start would
        # otherwise retry in silence), so the error is the one being handled.
        exc = sys.exc_info()[1]
        why = (exc.strerror or str(exc)) if isinstance(exc, OSError) else "connection failed"
        self._set_problem(
            f"cannot reach mqtt broker {self.config.host}:{self.config.port}: {why}; retrying",
            logging.WARNING,
        )

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if reason.is_failure:
            hint = " (check mqtt.username / password)" if reason.value in _AUTH_REFUSED else ""
            self._set_problem(
                f"mqtt broker {self.config.host}:{self.config.port} refused the connection: "
                f"{reason}{hint}",
                logging.ERROR,
            )
            return
        self.problem = None
        self.connect_failures = 0
        log.info(
            "service=%s %s to mqtt %s:%s",
            self.topics.service,
            "reconnected" if self._was_connected else "connected",
            self.config.host,
            self.config.port,
        )
        self._was_connected = True
        self._generation += 1
        with self._lock:
            subs = list(self._subs.items())
        for topic_filter, options in subs:
            client.subscribe(topic_filter, options=options)
        # After the subscriptions: the broker handles one connection's packets in order, so
        # whoever sees "online" knows the service already listens.
        client.publish(self.topics.status, "online", qos=1, retain=True)
        with self._retained_lock:
            with self._lock:
                retained = list(self._retained.items())
            now = time.monotonic()
            for topic, item in retained:
                expiry = item.expiry_s
                if expiry:
                    left = expiry - int(now - item.published_at)
                    if left <= 0:
                        continue  # expired on the broker too; don't resurrect it
                    expiry = left
                self._send_retained(topic, item.payload, expiry)
            self.connected.set()
        self.journal.connected()
        for hook in self._connect_hooks:
            try:
                hook()
            except Exception:
                log.exception("on_connected hook failed")

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        self.journal.disconnected()
        if was and not self._stopping:
            log.warning(
                "service=%s lost mqtt connection (%s); reconnecting", self.topics.service, reason
            )

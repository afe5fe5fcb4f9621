"""The MQTT bus against a real mosquitto: status and last will, expiry, broker restarts."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from paho.mqtt import publish

from services.core.bus import Bus
from services.core.config import MqttConfig
from tests.conftest import Broker, Watcher, wait_until


def make_bus(broker: Broker, prefix: str, **extra: object) -> Bus:
    config = MqttConfig(host=broker.host, port=broker.port, prefix=prefix, **extra)
    return Bus(config, "demo")


def test_status_online_then_offline_on_clean_stop(
    broker: Broker, prefix: str, watch: Callable[[str], Watcher]
) -> None:
    w = watch(f"{prefix}/#")
    bus = make_bus(broker, prefix)
    bus.start()
    assert bus.wait_connected(10)
    msg = w.payload(f"{prefix}/demo/status", b"online")
    bus.stop()
    w.payload(f"{prefix}/demo/status", b"offline", after=w.messages.index(msg) + 1)


def test_last_will_on_crash(broker: Broker, prefix: str, watch: Callable[[str], Watcher]) -> None:
    w = watch(f"{prefix}/#")
    code = (
        "import time\nfrom services.core.bus import Bus\n"
        "from services.core.config import MqttConfig\n"
        f"b = Bus(MqttConfig(host={broker.host!r}, port={broker.port}, prefix={prefix!r},"
        " keepalive_s=5), 'demo')\nb.start()\ntime.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        w.payload(f"{prefix}/demo/status", b"online")
        proc.kill()  # no clean stop: the broker must send the will
        proc.wait()
        w.payload(f"{prefix}/demo/status", b"offline", timeout=20)
    finally:
        proc.kill()


def test_state_is_retained_with_expiry(
    broker: Broker, prefix: str, watch: Callable[[str], Watcher]
) -> None:
    bus = make_bus(broker, prefix, state_expiry_s=120)
    bus.start()
    try:
        assert bus.wait_connected(10)
        bus.publish_state(f"{prefix}/demo/dev/state", {"power_w": 12})
        time.sleep(0.3)
        late = watch(f"{prefix}/demo/dev/state")  # subscribes after: gets the retained copy
        msg = late.topic(f"{prefix}/demo/dev/state")
        assert msg.retain and msg.payload == b'{"power_w":12}'
        assert msg.expiry is not None and 100 < msg.expiry <= 120
    finally:
        bus.stop()


def test_broker_restart_resubscribes_and_republishes(
    broker: Broker, prefix: str, watch: Callable[[str], Watcher]
) -> None:
    got: list[bytes] = []
    received = threading.Event()
    bus = make_bus(broker, prefix)

    def handler(_topic: str, payload: bytes) -> None:
        got.append(payload)
        received.set()

    bus.subscribe(f"{prefix}/demo/cmd", handler)
    bus.start()
    try:
        assert bus.wait_connected(10)
        bus.publish_retained(f"{prefix}/demo/dev/availability", "online")
        broker.stop()  # persistence is off: the broker forgets every retained message
        time.sleep(1.0)
        assert not bus.connected.is_set()
        restarted = time.monotonic()
        broker.start()
        assert bus.wait_connected(10)
        took = time.monotonic() - restarted
        assert took < 10, took
        late = watch(f"{prefix}/demo/#")
        late.payload(f"{prefix}/demo/dev/availability", b"online")
        late.payload(f"{prefix}/demo/status", b"online")
        publish.single(f"{prefix}/demo/cmd", "ping", hostname=broker.host, port=broker.port)
        assert received.wait(10) and got == [b"ping"]
    finally:
        bus.stop()


def test_a_failing_handler_does_not_kill_the_connection(broker: Broker, prefix: str) -> None:
    calls: list[bytes] = []

    def handler(_topic: str, payload: bytes) -> None:
        calls.append(payload)
        if payload == b"bad":
            raise ValueError("boom")

    bus = make_bus(broker, prefix)
    bus.subscribe(f"{prefix}/demo/cmd", handler)
    bus.start()
    try:
        assert bus.wait_connected(10)
        # "connected" comes before the broker's SUBACK: probe until the subscription is live.
        deadline = time.monotonic() + 10
        while b"probe" not in calls and time.monotonic() < deadline:
            publish.single(f"{prefix}/demo/cmd", "probe", hostname=broker.host, port=broker.port)
            time.sleep(0.05)
        calls.clear()
        for payload in ("bad", "good"):
            publish.single(f"{prefix}/demo/cmd", payload, hostname=broker.host, port=broker.port)
        deadline = time.monotonic() + 10
        while calls[-1:] != [b"good"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [c for c in calls if c != b"probe"] == [b"bad", b"good"]
        assert bus.connected.is_set()
    finally:
        bus.stop()


# -- connection problems are said, once each -----------------------------------------------


def messages(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if text in r.getMessage()]


@pytest.fixture
def secure_broker(tmp_path: Path) -> Iterator[Broker]:
    """A mosquitto that wants a user name and a password (user `teleinfo`, `s3cret`)."""
    passwd = tmp_path / "passwd"
    passwd.touch(mode=0o600)
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "teleinfo", "s3cret"], check=True,
                   capture_output=True)
    b = Broker(tmp_path)
    # As root, mosquitto 2 drops to its own user before reading the password file.
    root = "user root\n" if os.geteuid() == 0 else ""
    b.conf.write_text(f"listener {b.port} 127.0.0.1\nallow_anonymous false\n"
                      f"password_file {passwd}\npersistence false\n{root}", encoding="utf-8")
    b.start()
    yield b
    b.stop()


def test_refused_credentials_are_said_once_while_retrying(
    secure_broker: Broker, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="services.core.bus")
    bus = Bus(MqttConfig(host=secure_broker.host, port=secure_broker.port, prefix=prefix,
                         username="teleinfo", password="wrong", reconnect_max_s=1), "demo")
    bus.start()
    try:
        wait_until(lambda: bus.connect_failures >= 3)  # retried, with the bus's backoff
        refused = messages(caplog, "refused the connection")
        assert len(refused) == 1, [r.getMessage() for r in refused]
        assert refused[0].levelno == logging.ERROR
        expected = (f"mqtt broker {secure_broker.host}:{secure_broker.port} refused the "
                    "connection: Not authorized (check mqtt.username / password)")
        assert expected in refused[0].getMessage()
        assert bus.problem is not None and expected in bus.problem
        assert not bus.connected.is_set()
        assert "wrong" not in caplog.text  # the password is never logged
    finally:
        bus.stop()


def test_unreachable_broker_is_said_once_then_connected(
    tmp_path: Path, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="services.core.bus")
    late = Broker(tmp_path)  # its port: free, nothing listens there yet
    bus = Bus(MqttConfig(host=late.host, port=late.port, prefix=prefix, reconnect_max_s=1),
              "demo")
    bus.start()
    try:
        wait_until(lambda: bus.connect_failures >= 3)
        line = f"cannot reach mqtt broker {late.host}:{late.port}: Connection refused; retrying"
        assert len(messages(caplog, line)) == 1, caplog.text
        assert bus.problem == line
        late.start()
        assert bus.wait_connected(20)
        assert bus.problem is None
        assert messages(caplog, f"connected to mqtt {late.host}:{late.port}")
        assert len(messages(caplog, "cannot reach")) == 1
    finally:
        bus.stop()
        late.stop()


def test_journal_waits_for_the_recorder_and_survives_a_broker_restart(
    broker: Broker, prefix: str, watch: Callable[[str], Watcher]
) -> None:
    """Each state goes out on its journal twin without expiry, but only once the broker has
    the recorder's session (its retained status): a broker restarted without persistence has
    none, so what is published meanwhile waits, in order, instead of going to nobody."""
    journal = watch(f"{prefix}/demo/+/journal")
    bus = make_bus(broker, prefix, state_expiry_s=60)
    bus.start()
    status = f"{prefix}/historian/status"
    try:
        assert bus.wait_connected(10)
        bus.publish_state(f"{prefix}/demo/dev/state", {"n": 0})
        assert bus.journal.held == 1  # no recorder's status on this broker yet
        publish.single(status, "online", retain=True, hostname=broker.host, port=broker.port)
        first = journal.payload(f"{prefix}/demo/dev/journal", b'{"n":0}')
        assert not first.retain and first.expiry is None
        broker.stop()  # persistence off: the status and every session are gone
        wait_until(lambda: not bus.connected.is_set(), 10, "the bus never saw the broker go")
        for n in range(1, 4):
            bus.publish_state(f"{prefix}/demo/dev/state", {"n": n})
        broker.start()
        assert bus.wait_connected(10)
        again = watch(f"{prefix}/demo/+/journal")  # the recorder, subscribed again
        assert bus.journal.held == 3
        publish.single(status, "online", retain=True, hostname=broker.host, port=broker.port)
        again.payload(f"{prefix}/demo/dev/journal", b'{"n":3}')
        got = [m.payload for m in again.messages]
        # The replay of what went out before the outage first (the broker may have lost it
        # between its PUBACK and its delivery), then the held ones in order.
        assert got == [b'{"n":0}', b'{"n":1}', b'{"n":2}', b'{"n":3}']
    finally:
        bus.stop()
        publish.single(status, "", retain=True, hostname=broker.host, port=broker.port)


def test_a_retained_message_published_while_connecting_is_not_lost(
    broker: Broker, prefix: str, watch: Callable[[str], Watcher]
) -> None:
    """A retained message published between the connection's re-send of the cache and the
    moment the bus says it is connected reaches the broker (a port error's diagnostics were
    lost in that window)."""
    topic = f"{prefix}/demo/dev/diagnostics"
    bus = make_bus(broker, prefix)
    bus.publish_retained(topic, "v1")
    send = bus._send_retained
    racer = threading.Thread(target=lambda: bus.publish_retained(topic, "v2"))

    def send_then_race(t: str, payload: str | bytes, expiry: int | None) -> None:
        send(t, payload, expiry)
        if t == topic and not racer.is_alive() and racer.ident is None:
            racer.start()  # publishes while the re-send is under way
            racer.join(0.5)  # returns at once without the fix; blocks on it with it

    bus._send_retained = send_then_race  # type: ignore[method-assign,assignment]
    bus.start()
    try:
        assert bus.wait_connected(10)
        racer.join(5)
        w = watch(topic)  # subscribes after: gets the retained copy
        wait_until(lambda: bool(w.messages), 5, "the retained diagnostics")
        assert w.messages[-1].payload == b"v2"
    finally:
        bus.stop()

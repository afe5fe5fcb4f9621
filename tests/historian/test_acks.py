"""Acks held until a commit: the broker must keep sending meanwhile (a real mosquitto), and the
checkpoint must ack exactly what a commit covers, in order, and turn away what it already took."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from services.core.bus import DURABLE_RECEIVE_MAXIMUM, Ack, Bus
from services.core.config import MqttConfig
from services.core.history.tariffs import TariffBook
from services.historian.checkpoint import Checkpoint
from services.historian.history import LocalHistory
from services.historian.ledger import Ledger
from services.historian.points import Point
from services.historian.service import COMMIT_AT_PENDING, COMMIT_GRACE_S
from tests.conftest import Broker

GRACE = COMMIT_GRACE_S
T0 = 1_764_000_000.0  # 16:00:00Z, a minute boundary


def test_the_broker_sends_past_its_inflight_limit_to_a_durable_session(
    broker: Broker, prefix: str,
) -> None:
    # mosquitto sends a client at most max_inflight_messages (20) unacked messages, unless an
    # MQTT v5 client asks for more with Receive Maximum: the durable bus does.
    got: list[bytes] = []
    held: list[Ack] = []
    lock = threading.Lock()

    def handler(_topic: str, payload: bytes, ack: Ack) -> None:
        with lock:
            got.append(payload)
            held.append(ack)  # never acked here: as if waiting for the next commit

    bus = Bus(MqttConfig(host=broker.host, port=broker.port, prefix=prefix), "acks",
              durable_session_s=60)
    bus.subscribe_acked(f"{prefix}/acks/in", handler)
    bus.start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    try:
        deadline = time.monotonic() + 15
        while not got:  # until subscribed: the probes before that are lost
            assert time.monotonic() < deadline, "never subscribed"
            pub.publish(f"{prefix}/acks/in", b"probe", qos=1).wait_for_publish(5)
            time.sleep(0.1)  # poll interval, not a synchronisation
        count = 200  # ten times mosquitto's default inflight window
        for i in range(count):
            info = pub.publish(f"{prefix}/acks/in", str(i).encode(), qos=1)
        info.wait_for_publish(5)
        deadline = time.monotonic() + 15
        while True:
            with lock:
                if str(count - 1).encode() in got:
                    break
            assert time.monotonic() < deadline, f"{len(got)} delivered without acks"
            time.sleep(0.02)
        assert COMMIT_AT_PENDING < DURABLE_RECEIVE_MAXIMUM  # the worker commits in time
    finally:
        pub.loop_stop()
        pub.disconnect()
        bus.stop()


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[LocalHistory, Ledger, Checkpoint]]:
    history = LocalHistory(tmp_path / "h.sqlite3")
    ledger = Ledger(history, TariffBook())
    yield history, ledger, Checkpoint(history, ledger)
    history.close()


class Acks:
    """Records which acks were sent, in which order."""

    def __init__(self) -> None:
        self.sent: list[int] = []

    def __call__(self, n: int) -> Ack:
        return lambda: self.sent.append(n)


def reading(history: LocalHistory, ledger: Ledger, check: Checkpoint, n: int,
            ts: float) -> bool:
    if not check.take("teleinfo", "linky", ts):
        return False
    history.add(Point("teleinfo", (("device", "linky"),), (("apparent_power_va", n),),
                      round(ts * 1e9)))
    ledger.observe_meter("linky", ts, {"base": 1000 + n}, None, "m1")
    return True


def counted(history: LocalHistory) -> int:
    tables = [t for (t,) in history.db.execute(
        "SELECT name FROM sqlite_schema WHERE name GLOB 'samples_[0-9]*'")]
    return sum(history.db.execute(f"SELECT coalesce(sum(count), 0) FROM {t}").fetchone()[0]
               for t in tables)


def test_a_commit_acks_the_closed_minutes_in_order_and_a_forced_one_everything(
    parts: tuple[LocalHistory, Ledger, Checkpoint],
) -> None:
    history, ledger, check = parts
    acks = Acks()
    for n, ts in enumerate([T0 + 10, T0 + 50, T0 + 70, T0 + 75]):  # minutes 0, 0, 1, 1
        assert reading(history, ledger, check, n, ts)
        check.hold(acks(n), ts)
    check.hold(acks(4))  # a message with nothing for the history
    assert check.commit(T0 + 80) == 2  # minute 1 is open: its readings wait...
    assert acks.sent == [0, 1]  # ...and so does the bad message after them (the ack order)
    assert check.pending == 3
    assert check.commit(T0 + 90, force=True) == 3
    assert acks.sent == [0, 1, 2, 3, 4]
    assert counted(history) == 4


def test_what_comes_back_after_a_crash_is_counted_once(
    tmp_path: Path, parts: tuple[LocalHistory, Ledger, Checkpoint],
) -> None:
    history, ledger, check = parts
    acks = Acks()
    for n in range(3):  # minute 0, committed...
        reading(history, ledger, check, n, T0 + n)
        check.hold(acks(n), T0 + n)
    reading(history, ledger, check, 3, T0 + 61)  # ...and minute 1, still open
    check.hold(acks(3), T0 + 61)
    check.commit(T0 + 62)
    assert acks.sent == [0, 1, 2]
    # A kill -9 before the acks left (the worst case): the broker sends everything again.
    again_history = LocalHistory(tmp_path / "h.sqlite3")
    again_ledger = Ledger(again_history, TariffBook())
    again = Checkpoint(again_history, again_ledger)
    taken = [reading(again_history, again_ledger, again, n, ts)
             for n, ts in [(0, T0), (1, T0 + 1), (2, T0 + 2), (3, T0 + 61), (4, T0 + 62)]]
    assert taken == [False, False, False, True, True]  # the open minute was not written
    again.commit(T0 + 200, force=True)
    assert counted(again_history) == 5
    days = again_history.db.execute("SELECT sum(wh) FROM ledger_days").fetchone()[0]
    assert days == 4  # 1000 -> 1004, once
    again_history.close()


def test_a_state_seen_twice_is_taken_once(
    parts: tuple[LocalHistory, Ledger, Checkpoint],
) -> None:
    _history, _ledger, check = parts
    assert check.take("relays", "pump", T0)
    assert not check.take("relays", "pump", T0)  # re-published after a reconnect
    assert check.take("relays", "heater", T0)  # another device
    assert check.take("relays", "pump", None) and check.take("relays", "pump", None)


def test_a_failed_commit_keeps_the_acks_and_the_ledger(
    parts: tuple[LocalHistory, Ledger, Checkpoint],
) -> None:
    history, ledger, check = parts
    acks = Acks()
    reading(history, ledger, check, 0, T0)
    reading(history, ledger, check, 5, T0 + 5)
    check.hold(acks(0), T0 + 5)
    blocker = sqlite3.connect(history.path, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # another writer: the commit cannot take the lock
    history.db.execute("PRAGMA busy_timeout = 0")
    with pytest.raises(sqlite3.OperationalError):
        check.commit(T0 + 120)
    assert acks.sent == [] and check.pending == 1
    blocker.rollback()
    blocker.close()
    assert check.commit(T0 + 120) == 1
    assert history.db.execute("SELECT sum(wh) FROM ledger_days").fetchone()[0] == 5
    assert counted(history) == 2


def test_a_reading_for_a_minute_already_written_is_late(
    parts: tuple[LocalHistory, Ledger, Checkpoint],
) -> None:
    # After an outage a publisher sends what it held: readings of minutes the last commit
    # already wrote. They must not wait a whole flush interval in RAM (a power cut).
    history, ledger, check = parts
    acks = Acks()
    assert reading(history, ledger, check, 0, T0 + 70)
    check.hold(acks(0), T0 + 70)
    assert not check.late(T0 + 100, GRACE)  # the open minute: the normal case
    assert not check.late(T0 + 121, GRACE)  # its minute just closed: the flush is due soon
    check.commit(T0 + 122)  # writes minutes 0 and 1
    assert not check.late(T0 + 122, GRACE)
    assert reading(history, ledger, check, 1, T0 + 119.5)  # minute 1, arriving late
    check.hold(acks(1), T0 + 119.5)
    assert check.late(T0 + 123, GRACE)
    assert check.commit(T0 + 125) == 1
    assert not check.late(T0 + 125, GRACE) and acks.sent == [0, 1]
    assert counted(history) == 2


def test_a_restarted_historians_backlog_is_late_before_its_first_commit(
    parts: tuple[LocalHistory, Ledger, Checkpoint],
) -> None:
    # A historian that has just started has committed nothing; the backlog the broker and
    # the publishers send it is from minutes already closed. Held until its first regular
    # commit (up to a minute later) it went with the RAM at a power cut: CI lost 2-4
    # readings per device that way (the broker restarted, then a power cut 25 s later).
    history, ledger, check = parts
    acks = Acks()
    assert reading(history, ledger, check, 0, T0 + 58)  # minute 0, received in minute 1
    check.hold(acks(0), T0 + 58)
    assert check.late(T0 + 63, GRACE)
    assert check.commit(T0 + 63) == 1
    assert acks.sent == [0] and counted(history) == 1

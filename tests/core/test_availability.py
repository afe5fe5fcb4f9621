"""A device's availability connection against a real mosquitto: its last will, a clean
stop, a broker restart."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from services.core.availability import DeviceAvailability
from services.core.bus import Bus
from services.core.config import MqttConfig
from tests.conftest import Broker, Watcher


def make_bus(broker: Broker, prefix: str) -> Bus:
    return Bus(MqttConfig(host=broker.host, port=broker.port, prefix=prefix), "demo")


def test_online_then_offline_on_clean_stop(
    broker: Broker, prefix: str, watch: Callable[[str], Watcher]
) -> None:
    w = watch(f"{prefix}/#")
    avail = DeviceAvailability(make_bus(broker, prefix), "meter")
    topic = f"{prefix}/demo/meter/availability"
    avail.set(True)
    w.payload(topic, b"online")
    assert watch(topic).topic(topic).payload == b"online"  # retained
    count = w.count()
    avail.stop()
    w.payload(topic, b"offline", after=count)
    # A clean stop sends no will on top: the last word is the one offline.
    late = watch(topic)
    assert late.topic(topic).payload == b"offline"


def test_kill_9_sends_the_devices_will(
    broker: Broker, prefix: str, watch: Callable[[str], Watcher]
) -> None:
    w = watch(f"{prefix}/demo/+/availability")
    code = (
        "from services.core.availability import DeviceAvailability\n"
        "from services.core.bus import Bus\nfrom services.core.config import MqttConfig\n"
        f"bus = Bus(MqttConfig(host={broker.host!r}, port={broker.port}, prefix={prefix!r}),"
        " 'demo')\n"
        "for device in ('a', 'b'):\n    DeviceAvailability(bus, device).set(True)\n"
        "import signal\nsignal.pause()  # until the test kills it\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        for device in ("a", "b"):
            w.payload(f"{prefix}/demo/{device}/availability", b"online", timeout=20)
        count = w.count()
        proc.kill()  # no clean stop: only the broker can say it
        proc.wait()
        for device in ("a", "b"):
            w.payload(f"{prefix}/demo/{device}/availability", b"offline", after=count,
                      timeout=30)
    finally:
        proc.kill()
        proc.wait()


def test_broker_restart_republishes_availability(
    broker: Broker, prefix: str, watch: Callable[[str], Watcher]
) -> None:
    avail = DeviceAvailability(make_bus(broker, prefix), "meter")
    topic = f"{prefix}/demo/meter/availability"
    try:
        w = watch(topic)
        avail.set(True)
        w.payload(topic, b"online")
        broker.stop()  # persistence is off: the retained online is gone
        broker.start()
        late = watch(topic)
        late.payload(topic, b"online", timeout=20)
        avail.set(False)
        late.payload(topic, b"offline")
    finally:
        avail.stop()

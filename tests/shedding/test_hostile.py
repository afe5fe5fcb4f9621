"""No message on any topic shedding reads stops it or changes what it decides."""

from __future__ import annotations

import json

import pytest
from paho.mqtt import publish

from tests.shedding.test_service import Harness

HOSTILE = [
    b"[" * 100_000,
    b'{"a":' * 50_000,
    b"\xff\xfe\x00" * 100,
    b"x" * 1_000_000,
    b'{"apparent_power_va": NaN, "subscribed_power_kva": 9}',
    b'{"apparent_power_va": "9000", "subscribed_power_kva": "9", "overload": "yes"}',
    b'{"apparent_power_phase_va": [1e308, -1e308, 1], "current_a": {"a": 1}}',
    b"[]",
    b"null",
    b"ONLINE but not quite",
]


@pytest.mark.parametrize("retain", [False, True], ids=["live", "retained"])
def test_hostile_input_on_every_topic_then_a_peak_still_sheds(
    harness: Harness, retain: bool
) -> None:
    p = harness.prefix
    topics = [f"{p}/teleinfo/linky/state", f"{p}/teleinfo/linky/availability",
              f"{p}/teleinfo/status"]
    for topic in topics:
        for payload in HOSTILE:
            publish.single(topic, payload, qos=1, retain=retain,
                           hostname=harness.broker.host, port=harness.broker.port)
    harness.start()  # retained junk is what it meets at start
    mark = harness.shed("heater", False)
    for topic in topics:  # and the same junk again while it runs
        for payload in HOSTILE:
            publish.single(topic, payload, qos=1,
                           hostname=harness.broker.host, port=harness.broker.port)
    rejected = harness.event("rejected", mark)
    assert rejected["reason"] and len(rejected.get("excerpt", "")) <= 80
    # The meter comes back with real data: the decisions are what the data says, nothing else.
    for topic, value in ((f"{p}/teleinfo/status", b"online"),
                         (f"{p}/teleinfo/linky/availability", b"online")):
        publish.single(topic, value, qos=1, retain=True,
                       hostname=harness.broker.host, port=harness.broker.port)
    harness.meter(3000)
    harness.meter(8800)  # 98 % of 9 kVA
    harness.shed("heater", True, mark)
    assert harness.service is not None and harness.service.healthy()
    states = [json.loads(m.payload) for m in harness.w.messages
              if m.topic == f"{p}/shedding/linky/state" and m.payload]
    assert states[-1]["load_va"] == [8800]

"""The MQTT contract: topics round-trip, every decoder turns any bytes into a message or a
rejection (never an exception), and the limits hold before any JSON parser runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.contract import (
    AutoWish,
    CommandReply,
    DeviceState,
    Event,
    EventKind,
    MeterState,
    Order,
    Presence,
    Rejection,
    RelayCommand,
    ShedFlag,
    TopicKind,
    Topics,
    decode_json,
)
from services.core.contract.payload import json_depth

DECODERS = (RelayCommand, ShedFlag, AutoWish, Presence, Event, DeviceState, MeterState,
            CommandReply)
HOSTILE = [
    b"[" * 100_000,
    b'{"a":' * 50_000,
    b"\xff\xfe" * 10,
    b"x" * 1_000_000,
    b'{"mode": "on", "for_s": NaN}',
    b'{"mode": "on", "for_s": Infinity}',
    b'{"shed": "true"}',
    b"",
    b"null",
    b"[]",
    b'{"state": ["on"]}',
    b'"' + b"\\" * 10_000,
]


@pytest.mark.parametrize("payload", HOSTILE, ids=lambda p: repr(p[:12]))
@pytest.mark.parametrize("decoder", DECODERS, ids=lambda d: d.__name__)
def test_hostile_payloads_become_rejections(decoder: Any, payload: bytes) -> None:
    got = decoder.decode(payload)
    lenient = {(Presence, b""), (DeviceState, b'{"shed": "true"}'),
               (MeterState, b'{"shed": "true"}'), (DeviceState, b'{"state": ["on"]}'),
               (MeterState, b'{"state": ["on"]}')}
    if not isinstance(got, Rejection):
        # a cleared topic reads offline; any object is a state (its fields are typed later)
        assert (decoder, payload) in lenient
    else:
        assert got.reason
        assert len(got.excerpt) <= 80


@settings(max_examples=400)
@given(st.binary(max_size=2000))
def test_no_bytes_raise(payload: bytes) -> None:
    for decoder in DECODERS:
        decoder.decode(payload)


@settings(max_examples=200)
@given(st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=30,
))
def test_json_within_limits_parses_like_json(value: object) -> None:
    text = json.dumps(value)
    got = decode_json(text.encode())
    if json_depth(text) <= 8:
        assert got == json.loads(text)
    else:
        assert isinstance(got, Rejection)


def test_depth_ignores_brackets_in_strings() -> None:
    assert json_depth('{"a": "[[[[[[[[[[[[[[[["}') == 1
    assert json_depth('{"a": "\\"[[[[[[[[[[[[[[[["}') == 1
    assert isinstance(decode_json(b"[" * 9 + b"]" * 9), Rejection)
    assert decode_json(b"[" * 8 + b"]" * 8) == [[[[[[[[]]]]]]]]


@pytest.mark.parametrize(("payload", "expected"), [
    (b"on", RelayCommand("on")),
    (b" Off\n", RelayCommand("off")),
    (b"AUTO", RelayCommand("auto")),
    (b"aUtO", RelayCommand("auto")),
    (b'{"mode": "ON", "for_s": 3600}', RelayCommand("on", None, 3600.0)),
    (b'{"order": "eco"}', RelayCommand("on", Order.ECO)),
    (b'{"order": "Confort-1", "for_s": 1}', RelayCommand("on", Order.CONFORT_1, 1.0)),
    (b'{"mode": "off", "for_s": 31622400}', RelayCommand("off", None, 31_622_400.0)),
    # Until a local wall-clock time: the decode keeps (hour, minute), relays makes it an instant.
    (b'{"mode": "on", "until": "14:00"}', RelayCommand("on", until=(14, 0))),
    (b'{"mode": "OFF", "until": "6:05"}', RelayCommand("off", until=(6, 5))),
    (b'{"mode": "on", "until": "00:00"}', RelayCommand("on", until=(0, 0))),
    (b'{"mode": "on", "until": "23:59"}', RelayCommand("on", until=(23, 59))),
    (b'{"order": "confort", "until": "06:30"}',
     RelayCommand("on", Order.CONFORT, until=(6, 30))),
    (b'{"order": "eco", "mode": "on", "until": "02:30"}',
     RelayCommand("on", Order.ECO, until=(2, 30))),
])
def test_relay_commands_in_every_form(payload: bytes, expected: RelayCommand) -> None:
    assert RelayCommand.decode(payload) == expected
    assert RelayCommand.decode(expected.encode()) == expected


@pytest.mark.parametrize(("payload", "reason"), [
    (b'{"mode": "on", "for_s": 0.5}', "between 1 s"),
    (b'{"mode": "on", "for_s": 31622401}', "a year"),
    (b'{"mode": "on", "for_s": NaN}', "not valid JSON"),
    (b'{"mode": "on", "for_s": "60"}', "number of seconds"),
    (b'{"mode": "on", "for_s": true}', "number of seconds"),
    (b'{"mode": "auto", "for_s": 60}', "forced mode"),
    (b'{"mode": "dim"}', "not one of on, off, auto"),
    (b'{"order": "turbo"}', "not one of confort"),
    (b'{"order": "eco", "mode": "off"}', "only be 'on'"),
    (b'{"mode": "on", "colour": "red"}', "unknown key"),
    (b"toggle", "neither ON, OFF, AUTO"),
    (b"[1]", "neither ON, OFF, AUTO"),
    (b"x" * 2000, "over the 1024-byte limit"),
    (b'{"mode": "on", "until": "14:00", "for_s": 60}', "either 'for_s' or 'until'"),
    (b'{"order": "eco", "until": "14:00", "for_s": 60}', "either 'for_s' or 'until'"),
    (b'{"mode": "auto", "until": "14:00"}', "'until' goes with a forced mode"),
    (b'{"until": "14:00"}', "not one of on, off, auto"),
    (b'{"mode": "on", "until": "25:00"}', 'local time "HH:MM"'),
    (b'{"mode": "on", "until": "24:00"}', 'local time "HH:MM"'),
    (b'{"mode": "on", "until": "14:60"}', 'local time "HH:MM"'),
    (b'{"mode": "on", "until": "14h"}', 'local time "HH:MM"'),
    (b'{"mode": "on", "until": "14h00"}', 'local time "HH:MM"'),
    (b'{"mode": "on", "until": 1400}', 'local time "HH:MM"'),
    (b'{"mode": "on", "until": "14:00:00"}', 'local time "HH:MM"'),
    (b'{"mode": "on", "until": " 14:00"}', 'local time "HH:MM"'),
    (b'{"mode": "on", "until": "14:0"}', 'local time "HH:MM"'),
    (b'{"mode": "on", "until": "\\u0661\\u0664:00"}', 'local time "HH:MM"'),  # Arabic digits
    (b'{"mode": "on", "until": ["14:00"]}', 'local time "HH:MM"'),
])
def test_bad_relay_commands_say_why(payload: bytes, reason: str) -> None:
    got = RelayCommand.decode(payload)
    assert isinstance(got, Rejection)
    assert reason in got.reason


def test_until_is_written_as_hh_mm() -> None:
    cmd = RelayCommand.decode(b'{"mode": "on", "until": "6:30"}')
    assert isinstance(cmd, RelayCommand)
    assert cmd.until_text == "06:30"
    assert json.loads(cmd.encode()) == {"mode": "on", "until": "06:30"}
    assert RelayCommand("on").until_text is None


def test_an_order_is_for_zones_only() -> None:
    cmd = RelayCommand.decode(b'{"order": "eco"}')
    assert isinstance(cmd, RelayCommand)
    assert cmd.check_kind("fil_pilote") is None
    assert isinstance(cmd.check_kind("switch"), Rejection)


def test_messages_round_trip() -> None:
    flag = ShedFlag(True, "phase 1 at 95 %")
    assert ShedFlag.decode(flag.encode()) == flag
    wish = AutoWish("eco", "schedule")
    assert AutoWish.decode(wish.encode()) == wish
    reply = CommandReply("heater", True, False, "remembered", "on", None, 60.0)
    assert CommandReply.decode(reply.encode()) == reply
    until = CommandReply("heater", True, True, None, "on", None, None,
                         datetime(2026, 3, 29, 1, 0, tzinfo=UTC))
    assert CommandReply.decode(until.encode()) == until
    assert b'"until":"2026-03-29T01:00:00Z"' in until.encode().replace(b" ", b"")
    event = Event(EventKind.SHED, {"relay": "heater", "type": "spoofed"})
    decoded = Event.decode(event.encode())
    assert isinstance(decoded, Event)
    assert decoded.kind == EventKind.SHED
    assert decoded.data == {"relay": "heater"}
    assert Presence.decode(b"ONLINE") == Presence(True)
    assert Presence.decode(Presence(False).encode()) == Presence(False)


def test_meter_state_reads_mistyped_fields_as_absent() -> None:
    state = MeterState.decode(json.dumps({
        "apparent_power_va": "9000", "current_a": [10, "x"], "overload": 1,
        "apparent_power_phase_va": [1000, 2000, 3000], "subscribed_power_kva": 9,
        "tempo_tomorrow": "purple", "overload_phases": [1, 7, True],
        "ts": "2026-11-24T20:31:02.123Z",
    }).encode())
    assert isinstance(state, MeterState)
    assert state.apparent_power_va is None
    assert state.current_a is None
    assert state.overload is False
    assert state.apparent_power_phase_va == (1000.0, 2000.0, 3000.0)
    assert state.subscribed_power_kva == 9.0
    assert state.tempo_tomorrow is None
    assert state.overload_phases == (1,)
    assert state.ts is not None


def test_topics_build_and_parse() -> None:
    t = Topics("enerbox/site-42", "relays")
    assert t.relay_set("water-heater") == "enerbox/site-42/relays/water-heater/set"
    assert t.any_relay(TopicKind.RELAY_SHED) == "enerbox/site-42/relays/+/shed"
    assert t.any_device(TopicKind.STATE) == "enerbox/site-42/+/+/state"
    assert t.any_service(TopicKind.STATUS) == "enerbox/site-42/+/status"
    for topic, kind, service, device in [
        (t.relay_set("a"), TopicKind.RELAY_SET, "relays", "a"),
        (t.relay_shed("a"), TopicKind.RELAY_SHED, "relays", "a"),
        (t.relay_auto("a"), TopicKind.RELAY_AUTO, "relays", "a"),
        (t.relay_state("a"), TopicKind.STATE, "relays", "a"),
        (t.state_of("teleinfo", "linky"), TopicKind.STATE, "teleinfo", "linky"),
        (t.availability_of("teleinfo", "linky"), TopicKind.AVAILABILITY, "teleinfo", "linky"),
        (t.status_of("shedding"), TopicKind.STATUS, "shedding", None),
        (t.heartbeat_of("shedding"), TopicKind.HEARTBEAT, "shedding", None),
        (t.replies, TopicKind.REPLIES, "relays", None),
    ]:
        parsed = t.parse(topic)
        assert parsed is not None
        assert (parsed.kind, parsed.service, parsed.device) == (kind, service, device)
    field = t.parse(t.field("linky", "apparent_power_va"))
    assert field is not None and field.field == "apparent_power_va"
    for foreign in ["other/relays/a/set", "enerbox/site-42/relays/a/b/c", "enerbox/site-42/x",
                    "enerbox/site-42/relays//set", "enerbox/site-42/Relays/a/set"]:
        assert t.parse(foreign) is None
    with pytest.raises(ValueError, match="not a slug"):
        t.relay_set("a/b")
    with pytest.raises(ValueError, match="not a slug"):
        t.state_of("tele info", "linky")


def test_every_topic_kind_is_documented() -> None:
    from services.core.contract.table import ROWS, topic_table

    assert {row.kind for row in ROWS} == set(TopicKind)
    assert "relays/<relay>/set" in topic_table()

"""The journal's queue without a broker: held, in order, replayed, bounded."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.journal import Journal


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def journal(gated: bool = True, capacity: int = 100) -> tuple[Journal, list[bytes], Clock]:
    sent: list[bytes] = []
    clock = Clock()
    j = Journal(lambda _t, p: sent.append(p), "demo", gated=gated, capacity=capacity,
                replay_s=30, clock=clock)
    return j, sent, clock


def test_held_until_connected_and_the_recorder_seen() -> None:
    j, sent, _ = journal()
    j.put("t", b"1")
    j.connected()
    j.put("t", b"2")
    assert sent == [] and j.held == 2
    j.recorder_status(b"online")
    assert sent == [b"1", b"2"] and j.held == 0
    j.put("t", b"3")
    assert sent[-1] == b"3"


def test_an_offline_recorder_still_has_its_session() -> None:
    j, sent, _ = journal()
    j.connected()
    j.recorder_status(b"offline")  # its durable session queues for it
    j.put("t", b"1")
    assert sent == [b"1"]


def test_no_status_or_a_cleared_one_holds() -> None:
    j, sent, _ = journal()
    j.connected()
    j.recorder_status(b"")
    j.put("t", b"1")
    assert sent == []


def test_ungated_sends_once_connected() -> None:
    j, sent, _ = journal(gated=False)
    j.put("t", b"1")
    assert sent == []
    j.connected()
    assert sent == [b"1"]


def test_reconnection_replays_the_recent_window_first() -> None:
    j, sent, clock = journal()
    j.connected()
    j.recorder_status(b"online")
    j.put("t", b"old")
    clock.now += 40  # out of the replay window
    j.put("t", b"a")
    j.put("t", b"b")
    j.disconnected()
    j.put("t", b"c")
    j.connected()
    assert sent == [b"old", b"a", b"b"]  # held until the recorder is seen again
    j.recorder_status(b"online")
    assert sent == [b"old", b"a", b"b", b"a", b"b", b"c"]
    assert j.replayed == 2


def test_bounded_dropping_the_oldest() -> None:
    j, sent, _ = journal(capacity=3)
    for i in range(5):
        j.put("t", str(i).encode())
    assert j.dropped == 2
    j.connected()
    j.recorder_status(b"online")
    assert sent == [b"2", b"3", b"4"]


EVENTS = st.lists(st.sampled_from(["put", "connect", "disconnect", "online", "none", "tick"]),
                  max_size=60)


@settings(max_examples=300)
@given(EVENTS)
def test_in_order_nothing_lost_and_everything_out_once_open(events: list[str]) -> None:
    j, sent, clock = journal(capacity=1000)
    put: list[bytes] = []
    for event in events:
        if event == "put":
            put.append(str(len(put)).encode())
            j.put("t", put[-1])
        elif event == "connect":
            j.connected()
        elif event == "disconnect":
            j.disconnected()
        elif event == "online":
            j.recorder_status(b"online")
        elif event == "none":
            j.recorder_status(b"")
        else:
            clock.now += 10
    j.connected()
    j.recorder_status(b"online")
    # Every message went out; the first sendings are in order; replays only repeat.
    firsts: list[bytes] = []
    for payload in sent:
        if payload not in firsts:
            firsts.append(payload)
    assert firsts == put
    assert j.held == 0

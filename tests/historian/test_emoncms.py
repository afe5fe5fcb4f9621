"""EmoncmsSink against a small fake emoncms: bulk format, outages, refusals."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from services.historian.emoncms import EmoncmsSink, emoncms_items
from services.historian.points import Point, flatten
from services.historian.spool import Spool
from tests.conftest import free_port, wait_until

APIKEY = "0123456789abcdef0123456789abcdef"
Events = list[tuple[str, dict[str, Any]]]
Triple = tuple[int, str, str, float]  # (time, node, input, value)

# What the fake answers in each mode: emoncms says "ok" with a 200; a proxy in front of a
# stopped PHP says 503; a malformed request gets a 200 with a "Format error" message; a
# misrouted URL gets a 200 with some page.
ANSWERS = {
    "ok": (200, b"ok"),
    "down": (503, b"Service Unavailable"),
    "bad": (200, b'{"success": false, "message": "Format error, json string supplied is not'
                 b' valid"}'),
    "page": (200, b"<html><body>Log in</body></html>"),
}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8")).items()}
        fake = self.server.fake
        status, reply = ANSWERS[fake.mode]
        with fake.lock:
            fake.seen.append((self.path, form))
            if fake.mode == "ok":
                fake.accepted.append(form)
        self.send_response(status)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def do_GET(self) -> None:  # the sink's probe: emoncms answers /describe with "emoncms"
        fake = self.server.fake
        status, reply = (503, b"Service Unavailable") if fake.mode == "down" else (200, b"emoncms")
        with fake.lock:
            fake.probes.append(self.path)
        self.send_response(status)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *_args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    fake: FakeEmoncms


class FakeEmoncms:
    """Records bulk posts; ``mode`` picks the answer; stop() makes connections refused."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/emoncms"
        self.mode = "ok"
        self.lock = threading.Lock()
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.accepted: list[dict[str, str]] = []
        self.probes: list[str] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._server = _Server(("127.0.0.1", self.port), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None

    def triples(self) -> list[Triple]:
        """Every (time, node, input, value) emoncms stored."""
        with self.lock:
            entries = [e for form in self.accepted for e in json.loads(form["data"])]
        return [(t, node, name, value)
                for t, node, *inputs in entries for obj in inputs for name, value in obj.items()]


@pytest.fixture
def fake() -> Iterator[FakeEmoncms]:
    server = FakeEmoncms()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sink(tmp_path: Path, fake: FakeEmoncms) -> Iterator[tuple[EmoncmsSink, Events]]:
    events: Events = []
    spool = Spool(tmp_path / "emoncms.spool", 10**8)
    s = EmoncmsSink(spool, fake.url, APIKEY, on_event=lambda n, d: events.append((n, d)))
    s.start()
    yield s, events
    s.stop()
    spool.close()


BASE_S = int(time.time()) - 3600


def points(i: int) -> list[Point]:
    """A state of device d0 or d1 at second i: one scalar, two phases."""
    return flatten("t", f"d{i % 2}", {"v": i, "i": [i, -i]}, BASE_S + i + 0.5)


def expected(n: int) -> list[Triple]:
    return sorted(
        triple for i in range(n) for triple in (
            (BASE_S + i, f"enerbox_t_d{i % 2}", "v", float(i)),
            (BASE_S + i, f"enerbox_t_d{i % 2}", "i_1", float(i)),
            (BASE_S + i, f"enerbox_t_d{i % 2}", "i_2", float(-i)),
        )
    )


def test_items_are_bulk_entries_one_object_per_input() -> None:
    state = {"papp": 1200, "current_a": [5, 6], "energy_wh": {"HCHC": 10}, "ts": "x"}
    pts = flatten("teleinfo", "linky", state, 1_700_000_000.6)
    pts += flatten("vedirect", "mppt 1", {"ppv": 300}, 1_700_000_000.2)
    assert [json.loads(item) for item in emoncms_items(pts)] == [
        [1_700_000_000, "enerbox_teleinfo_linky", {"papp": 1200.0}, {"current_a_1": 5.0},
         {"current_a_2": 6.0}, {"energy_wh_HCHC": 10.0}],
        [1_700_000_000, "enerbox_vedirect_mppt_1", {"ppv": 300.0}],
    ]
    assert json.loads(emoncms_items(pts, node_prefix="home")[1])[1] == "home_vedirect_mppt_1"


def test_outage_and_recovery_lose_and_double_nothing(
    fake: FakeEmoncms, sink: tuple[EmoncmsSink, Events]
) -> None:
    s, events = sink
    n = 0

    def put_for(seconds: float) -> None:
        nonlocal n
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            s.spool.put(s.items(points(n)))
            n += 1
            time.sleep(0.02)

    put_for(0.5)
    assert s.flush(30), s.last_error
    fake.mode = "down"  # 503
    put_for(1.5)
    assert s.down
    fake.stop()  # connection refused
    put_for(1.5)
    assert s.spool.count() > 0
    fake.mode = "ok"
    fake.start()
    put_for(0.5)
    assert s.flush(60), s.last_error

    got = fake.triples()
    assert len(got) == len(set(got))  # nothing twice
    assert sorted(got) == expected(n)  # nothing lost
    wait_until(lambda: len(events) >= 2, 10, "the sink_up event")  # said after the ack
    assert [name for name, _ in events] == ["sink_down", "sink_up"]
    assert "503" in events[0][1]["error"]
    for path, form in fake.seen:
        assert path == "/emoncms/input/bulk.json"
        assert form["apikey"] == APIKEY
        assert abs(int(form["sentat"]) - time.time()) < 60


def test_format_error_answer_drops_the_batch(
    fake: FakeEmoncms, sink: tuple[EmoncmsSink, Events]
) -> None:
    s, events = sink
    fake.mode = "bad"
    s.spool.put(s.items(points(0)) + s.items(points(1)))
    assert s.flush(30)
    assert [name for name, _ in events] == ["sink_bad_data"]
    assert events[0][1]["dropped"] == 2
    assert json.loads(events[0][1]["first_bad"])[1] == "enerbox_t_d0"
    assert "Format error" in events[0][1]["error"]
    fake.mode = "ok"
    s.spool.put(s.items(points(2)))
    assert s.flush(30)
    assert [t[0] - BASE_S for t in fake.triples()] == [2, 2, 2]
    assert (s.written_total, s.dropped_bad) == (1, 2)


def test_a_200_that_is_not_ok_keeps_the_items(
    fake: FakeEmoncms, sink: tuple[EmoncmsSink, Events]
) -> None:
    s, events = sink
    fake.mode = "page"
    s.spool.put(s.items(points(0)))
    wait_until(lambda: events, 10, "no event")
    assert [name for name, _ in events] == ["sink_down"]
    assert "Log in" in events[0][1]["error"]
    assert s.spool.count() == 1
    fake.mode = "ok"
    assert s.flush(30)
    assert sorted(fake.triples()) == expected(1)
    wait_until(lambda: len(events) >= 2, 10, "the sink_up event")  # said after the ack
    assert [name for name, _ in events] == ["sink_down", "sink_up"]


def test_stop_during_an_outage_keeps_the_items(
    fake: FakeEmoncms, sink: tuple[EmoncmsSink, Events]
) -> None:
    s, events = sink
    s.stop()
    s.backoff_min_s = 60  # longer than stop()'s join timeout: stop must cut the wait short
    s.start()
    fake.stop()
    s.spool.put(s.items(points(0)))
    wait_until(lambda: events, 10, "no event")
    assert [name for name, _ in events] == ["sink_down"]
    s.stop()  # in a backoff wait: stops without waiting it out
    assert not [t for t in threading.enumerate() if t.name == "emoncms-sink"]
    assert s.spool.count() == 1


def test_backlog_drains_soon_after_emoncms_returns(
    fake: FakeEmoncms, sink: tuple[EmoncmsSink, Events]
) -> None:
    s, events = sink
    s.stop()
    s.backoff_min_s = s.backoff_max_s = 60.0  # as after a long outage: old code waited it out
    s.start()
    fake.stop()
    s.spool.put(s.items(points(0)) + s.items(points(1)))
    wait_until(lambda: s.probe_failures > 0, 30, "the sink never probed")
    fake.start()
    back = time.monotonic()
    wait_until(lambda: bool(fake.triples()), 30, "the backlog did not drain after the return")
    print(f"\nfirst backlog entry stored {time.monotonic() - back:.2f} s after emoncms' start")
    assert s.flush(30)
    assert sorted(fake.triples()) == expected(2)
    assert fake.probes and set(fake.probes) == {"/emoncms/describe"}
    # "up again" is said once the batch is acked: just after the queue empties (CI saw it late)
    wait_until(lambda: len(events) >= 2, 10, "the sink_up event")
    assert [name for name, _ in events] == ["sink_down", "sink_up"]


def test_a_server_that_answers_probes_but_refuses_keeps_its_backoff(
    fake: FakeEmoncms, sink: tuple[EmoncmsSink, Events]
) -> None:
    # Probes only cut a backoff short when the server was unreachable and answers again; a
    # server up but refusing every post (a login page: a bad url) is not hammered.
    s, events = sink
    s.stop()
    s.backoff_min_s = s.backoff_max_s = 60.0
    s.start()
    fake.mode = "page"
    s.spool.put(s.items(points(0)))
    wait_until(lambda: len(fake.probes) >= 2, 30, "the sink did not probe")
    assert len(fake.seen) == 1  # one post; the answered probes did not trigger a retry
    assert [name for name, _ in events] == ["sink_down"]

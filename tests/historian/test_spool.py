"""The disk spool: FIFO order, ack, the byte budget, crashes, threads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.historian.spool import Spool
from tests.conftest import ROOT


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    s = Spool(tmp_path / "spool.db", budget_bytes=1_000_000)
    yield s
    s.close()


def test_fifo_order_peek_and_ack(spool: Spool) -> None:
    assert spool.put(["a", "b", "c"]) == 0
    assert spool.put(["d"]) == 0
    peeked = spool.peek(2)
    assert [item for _, item in peeked] == ["a", "b"]
    assert spool.peek(2) == peeked  # peek removes nothing
    spool.ack(peeked[-1][0])
    assert [item for _, item in spool.peek(10)] == ["c", "d"]
    assert (spool.count(), spool.size_bytes()) == (2, 2)
    spool.ack(spool.peek(10)[-1][0])
    assert spool.peek(10) == []
    assert (spool.count(), spool.size_bytes()) == (0, 0)
    spool.put(["e"])
    assert spool.peek(1)[0][0] > peeked[-1][0]  # ids never go back, even after emptying


def test_budget_refuses_new_items_and_counts_them(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", budget_bytes=100)
    try:
        items = [f"item-{i:09d}" for i in range(10)]  # 14 bytes each
        assert spool.put(items) == 3  # 7 fit in 100 bytes
        assert spool.dropped_total == 3
        assert [item for _, item in spool.peek(100)] == items[:7]  # the queued ones stay
        assert spool.size_bytes() == 98
        assert spool.put(["é" * 2]) == 1  # 4 bytes in UTF-8: does not fit in the last 2
        assert spool.dropped_total == 4
        spool.ack(spool.peek(2)[-1][0])  # room for two more
        assert spool.put(["x" * 14, "y" * 14, "z" * 3]) == 1  # 30 bytes of room
        assert spool.dropped_total == 5
        assert spool.count() == 7
    finally:
        spool.close()


def test_reopen_keeps_items_and_counters(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = Spool(path, budget_bytes=1000)
    spool.put(["one", "twö", "three"])
    spool.ack(spool.peek(1)[0][0])
    spool.close()
    spool = Spool(path, budget_bytes=1000)
    try:
        assert [item for _, item in spool.peek(10)] == ["twö", "three"]
        assert (spool.count(), spool.size_bytes()) == (2, 9)
    finally:
        spool.close()


# Puts batch n, says so, then acks the oldest batch and says which: the parent kills it at a
# random point of that loop and checks what the file holds against what was said.
WRITER = """
import sys
from pathlib import Path
from services.historian.spool import Spool
spool = Spool(Path(sys.argv[1]), budget_bytes=10**9)
n = 0
while True:
    spool.put([f"{n}:{j}:" + "x" * 40 for j in range(50)])
    print("put", n, flush=True)
    if n >= 3:
        oldest = spool.peek(50)
        spool.ack(oldest[-1][0])
        print("acked", oldest[-1][1].split(":")[0], flush=True)
    n += 1
"""


def test_kill_9_while_writing_loses_no_committed_batch(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    said: list[str] = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            said.append(line)
            if line.startswith("put") and int(line.split()[1]) >= 150:
                break
        os.kill(child.pid, signal.SIGKILL)
        rest, _ = child.communicate(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    said += rest.splitlines()
    last_put = max(int(w.split()[1]) for w in said if w.startswith("put"))
    last_acked = max(int(w.split()[1]) for w in said if w.startswith("acked"))

    spool = Spool(path, budget_bytes=10**9)
    try:
        items = [item for _, item in spool.peek(10**6)]
        assert len(items) % 50 == 0, "a batch was half written"
        batches = [tuple(int(x) for x in item.split(":")[:2]) for item in items]
        first, last = batches[0][0], batches[-1][0]
        # Whole batches, in order, no gap: exactly first..last, each 0..49.
        assert batches == [(b, j) for b in range(first, last + 1) for j in range(50)]
        assert last_put <= last <= last_put + 1  # every put that returned is there
        assert last_acked < first <= last_acked + 2  # nothing acked came back
        assert spool.count() == len(items)
        assert spool.size_bytes() == sum(len(item) for item in items)
    finally:
        spool.close()


def test_threads_put_and_drain_concurrently(spool: Spool) -> None:
    received: list[str] = []
    done = threading.Event()

    def writer() -> None:
        for n in range(300):
            spool.put([f"{n}.{j}" for j in range(5)])
        done.set()

    def reader() -> None:
        while not (done.is_set() and spool.count() == 0):
            batch = spool.peek(7)
            if batch:
                received.extend(item for _, item in batch)
                spool.ack(batch[-1][0])

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert received == [f"{n}.{j}" for n in range(300) for j in range(5)]
    assert (spool.count(), spool.size_bytes(), spool.dropped_total) == (0, 0, 0)

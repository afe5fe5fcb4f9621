"""The data path: one stack, a sequence of faults, every reading counted in every sink.

The box as deployed on loopback: mosquitto with the shipped persistence, the simulated Linky,
teleinfo, relays, shedding, the historian writing the local history and VictoriaMetrics. Each
fault is a phase; at the end every reading the ground truth saw on the journal is looked up in
the local history (per minute) and in VictoriaMetrics (per sample) and charged to the phase
its time falls in. A power cut loses, by design, what the historian held in RAM (the open
minute of the local history, acked to the broker only once committed): those readings are
counted apart and bounded to that minute, not hidden (README, "When something fails").
"""

from __future__ import annotations

import bisect
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from faults.count import (
    RAM,
    Reading,
    Tally,
    compare_history,
    compare_vm,
    history_counts,
    integrity,
    readings,
)
from faults.procs import Proc
from faults.report import Row
from faults.stack import PREFIX, Source, Stack
from faults.vm import VictoriaMetrics
from services.core.journal import REPLAY_S
from services.historian.service import COMMIT_GRACE_S

SERVICES = ("relays", "shedding", "teleinfo", "vedirect", "historian", "api")
DEVICES = ("teleinfo", "vedirect", "relays", "shedding")  # the services that publish states
# The historian commits the local history's closed minutes COMMIT_GRACE_S after each minute
# (services/historian/service.py): a power cut takes the open minute, and the one before
# when it strikes within the grace (plus a batch and a commit: MARGIN_S).
MARGIN_S = 3.0


@dataclass(frozen=True)
class Plan:
    """How long each fault lasts."""

    db_down_s: float
    historian_kills: int
    outage_s: float
    state_expiry_s: int
    broker_down_s: float
    settle_s: float
    gap_s: tuple[float, float]  # a random wait before a kill or the cut: it strikes anywhere


# The outage is six state expiries over in both.
SHORT = Plan(db_down_s=6, historian_kills=2, outage_s=18, state_expiry_s=3,
             broker_down_s=4, settle_s=4, gap_s=(1, 5))
FULL = Plan(db_down_s=200, historian_kills=3, outage_s=1800, state_expiry_s=300,
            broker_down_s=10, settle_s=15, gap_s=(2, 20))


class Phases:
    """Which fault a reading's time belongs to (wall-clock ms)."""

    def __init__(self) -> None:
        self.starts: list[int] = [0]
        self.names: list[str] = ["start-up"]
        self.recovery: dict[str, float | None] = {}

    def begin(self, name: str) -> str:
        """A new phase from now on."""
        self.starts.append(now_ms())
        self.names.append(name)
        return name

    def of(self, ms: int) -> str:
        """The phase of a time."""
        return self.names[bisect.bisect_right(self.starts, ms) - 1]


def now_ms() -> int:
    """Wall clock in ms (readings carry wall-clock ts)."""
    return time.time_ns() // 1_000_000


class DataRun:
    """The stack, the database and the phases of one run."""

    def __init__(self, work: Path, plan: Plan) -> None:
        self.plan = plan
        self.phases = Phases()
        work.mkdir(parents=True, exist_ok=True)
        self.vm = VictoriaMetrics(work, {})
        self.vm.start()
        try:
            self.stack = Stack(work / "stack", services=SERVICES, durable_broker=True, config={
                "mqtt": {"state_expiry_s": plan.state_expiry_s},
                # relays re-publishes its states every third of this (2 s): the run knows
                # sooner that every producer is back.
                "relays": {"state_expiry_s": 6},
                "historian": {"influxdb": {"enabled": True, "url": self.vm.url,
                                           "org": "enerbox", "bucket": "enerbox"}},
                "vedirect": {"ports": [{"port": str(work / "stack" / "ve0"), "id": "mppt"}],
                             "publish_raw": False},
            })
        except BaseException:
            self.vm.stop()
            raise
        try:
            self._start_vedirect_sim(work / "stack" / "ve0")
        except BaseException:
            self.close()
            raise

    def _start_vedirect_sim(self, link: Path) -> None:
        # A SmartSolar charger on a second pty: a second device service on the data path.
        sim = Proc("sim-vedirect", [sys.executable, "-m", "services.sim", "vedirect",
                                    "--device", "mppt", "--link", str(link)],
                   self.stack.env, self.stack.work, cwd=Source.root)
        self.stack.procs["sim-vedirect"] = sim
        sim.start()

    @property
    def data_dir(self) -> Path:
        """The box's data directory."""
        return self.stack.work / "data"

    def truth(self) -> list[Reading]:
        """Every distinct reading seen on the journal so far."""
        with self.stack.rec.lock:
            messages = list(self.stack.rec.messages)
        return readings(messages, PREFIX)

    def in_vm(self, until_ms: int, timeout: float) -> float | None:
        """Seconds until VictoriaMetrics holds every reading of the current phase up to
        ``until_ms`` (None: not in ``timeout``): the time to recover. (An earlier phase's
        readings were waited for by its own row: one it lost is not waited for again.)"""
        start = time.monotonic()
        since = self.phases.starts[-1]
        while time.monotonic() - start < timeout:
            want = [r for r in self.truth() if since <= r.ts_ms <= until_ms]
            have: dict[str, set[int]] = {}
            for service in DEVICES:
                for name, stamps in self.vm.samples(service).items():
                    have[name] = set(stamps)
            if all(any(r.ts_ms in have.get(m, ()) for m in r.metrics) for r in want):
                return round(time.monotonic() - start, 2)
            time.sleep(0.5)  # poll interval of a database read-back, not a synchronisation
        return None

    def fresh(self, after_ms: int, timeout: float) -> bool:
        """Whether every producer published a reading stamped after ``after_ms`` (its journal
        goes out in order: what it held during the fault went out before)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            newest: dict[str, int] = {}
            for r in self.truth():
                newest[r.service] = max(newest.get(r.service, 0), r.ts_ms)
            if all(newest.get(s, 0) > after_ms for s in DEVICES):
                return True
            time.sleep(0.2)  # poll interval of the ground truth, not a synchronisation
        return False

    def recovered(self, name: str, timeout: float = 120.0) -> None:
        """How long after the fault ended every producer is back and every reading up to
        then stored in the database (None: not within ``timeout``). The next fault waits
        for it: two faults at once are not what a row measures."""
        start, end = time.monotonic(), now_ms()
        if not self.fresh(end, timeout):
            self.phases.recovery[name] = None
            return
        got = self.in_vm(end, max(1.0, timeout - (time.monotonic() - start)))
        self.phases.recovery[name] = None if got is None else round(
            time.monotonic() - start, 2)

    def close(self) -> None:
        """Stop everything."""
        try:
            self.stack.close()
        finally:
            self.vm.stop()


def _pause(seconds: float) -> None:
    time.sleep(seconds)  # a fault's length (or the time between two), not a synchronisation


Notes = dict[str, str]
Play = Callable[["DataRun", random.Random, Notes], None]


def run_faults(run: DataRun, rng: random.Random, plays: tuple[Play, ...]) -> Notes:
    """Play the faults in turn; returns notes (the cut's time, the integrity after it)."""
    run.stack.wait_ready()
    run.recovered("start-up", 60)
    notes: Notes = {}
    for play in plays:
        play(run, rng, notes)
    run.phases.begin("steady after the faults")
    _pause(run.plan.settle_s)
    return notes


def _database_down(run: DataRun, _rng: random.Random, _notes: Notes) -> None:
    name = run.phases.begin(f"VictoriaMetrics down {run.plan.db_down_s:g} s")
    run.vm.stop()
    _pause(run.plan.db_down_s)
    run.vm.start()
    run.recovered(name)


def _historian_kills(run: DataRun, rng: random.Random, _notes: Notes) -> None:
    name = run.phases.begin(f"historian kill -9, {run.plan.historian_kills} times")
    for _ in range(run.plan.historian_kills):
        _pause(rng.uniform(*run.plan.gap_s))  # at any moment: mid-batch, mid-commit
        run.stack.kill9("historian")
        _pause(1)
        run.stack.start("historian")
    run.recovered(name)


def _historian_outage(run: DataRun, _rng: random.Random, _notes: Notes) -> None:
    plan = run.plan
    name = run.phases.begin(f"historian down {plan.outage_s:g} s (state expiry "
                            f"{plan.state_expiry_s} s)")
    run.stack.procs["historian"].stop()
    _pause(plan.outage_s)
    run.stack.start("historian")
    run.recovered(name, timeout=max(120.0, plan.outage_s / 5))


def _broker_restart(run: DataRun, _rng: random.Random, _notes: Notes) -> None:
    stack = run.stack
    name = run.phases.begin("broker restarted while the historian is down")
    stack.procs["historian"].stop()
    _pause(run.plan.broker_down_s)
    stack.procs["mosquitto"].stop()  # SIGTERM: mosquitto writes its database on the way out
    stack.procs["mosquitto"].start()
    _pause(run.plan.broker_down_s)
    stack.start("historian")
    run.recovered(name)


def _broker_killed(run: DataRun, _rng: random.Random, _notes: Notes) -> None:
    name = run.phases.begin(f"broker kill -9, down {run.plan.broker_down_s:g} s")
    run.stack.procs["mosquitto"].kill9()
    _pause(run.plan.broker_down_s)
    run.stack.procs["mosquitto"].start()
    run.recovered(name)


def _broker_killed_historian_down(run: DataRun, _rng: random.Random, _notes: Notes) -> None:
    # Two faults at once, measured to be known, not promised: the broker's queue for the
    # historian lives in its RAM between two autosaves.
    stack = run.stack
    name = run.phases.begin("two faults: broker kill -9 while the historian is down")
    stack.procs["historian"].stop()
    # Longer than the publishers' replay window (30 s), which would cover a shorter one.
    _pause(REPLAY_S + 30)
    stack.procs["mosquitto"].kill9()
    stack.procs["mosquitto"].start()
    _pause(run.plan.broker_down_s)
    stack.start("historian")
    run.recovered(name, timeout=30)  # what is lost never arrives: no use waiting 2 min


def _services_killed(run: DataRun, _rng: random.Random, _notes: Notes) -> None:
    for service in ("teleinfo", "vedirect", "relays", "shedding", "api"):
        name = run.phases.begin(f"kill -9 {service}")
        run.stack.kill9(service)
        _pause(1)
        run.stack.start(service)
        run.recovered(name)


def _power_cut(run: DataRun, rng: random.Random, notes: Notes) -> None:
    stack = run.stack
    name = run.phases.begin("power cut (SIGKILL of the box, the database kept)")
    _pause(rng.uniform(*run.plan.gap_s))
    cut = now_ms()
    for proc in stack.procs.values():
        proc.kill9()  # at once: the broker, every service, the simulators
    notes["cut_ms"] = str(cut)
    bad = {f: r for f, r in integrity(run.data_dir).items() if r != "ok"}
    notes["integrity after the cut"] = str(bad) if bad else "ok"
    stack.procs["mosquitto"].start()
    stack.procs["sim-tic"].start()
    stack.procs["sim-vedirect"].start()
    for service in SERVICES:
        stack.start(service)
    stack.wait_ready()
    run.recovered(name)


def finish(run: DataRun, cut_ms: int) -> tuple[list[Reading], dict[str, Tally]]:
    """Stop the producers, let the historian store the rest, count every sink."""
    stack = run.stack
    for service in ("teleinfo", "vedirect", "shedding", "relays", "sim-tic", "sim-vedirect"):
        stack.procs[service].stop()
    # Their last states (a clean stop publishes some) reach the database before it is read.
    run.phases.recovery["steady after the faults"] = run.in_vm(now_ms(), 60)
    stack.procs["historian"].stop(timeout=30)  # a clean stop commits the open minute
    truth = run.truth()
    tally: dict[str, Tally] = defaultdict(Tally)
    first_ram_minute = (cut_ms - int((COMMIT_GRACE_S + MARGIN_S) * 1000)) // 60_000
    cut_phase = run.phases.of(cut_ms)

    def in_ram(minute: int) -> str | None:
        return cut_phase if cut_ms and first_ram_minute <= minute <= cut_ms // 60_000 else None

    compare_history(truth, history_counts(run.data_dir / "history.sqlite3"), run.phases.of,
                    tally, in_ram)
    samples = {}
    for service in DEVICES:
        samples.update(run.vm.samples(service))
    compare_vm(truth, samples, run.phases.of, tally)
    return truth, tally


EVERY_ONE: tuple[Play, ...] = (_database_down, _historian_kills, _historian_outage,
                                _broker_restart, _broker_killed, _services_killed, _power_cut)


def data_path(work: Path, plan: Plan = FULL, seed: int | None = None,
              plays: tuple[Play, ...] = EVERY_ONE, promised: bool = True) -> list[Row]:
    """The data faults in one run; one row per fault, plus the integrity checks."""
    rng = random.Random(seed)  # noqa: S311  (when faults strike, not a secret)
    run = DataRun(work / "data-path", plan)
    try:
        notes = run_faults(run, rng, plays)
        truth, tally = finish(run, int(notes.get("cut_ms", "0")))
        checks = integrity(run.data_dir)
    finally:
        run.close()
    rows = []
    for phase in run.phases.names:
        t = tally.get(phase, Tally())
        # Readings, not sink entries: one missing from both sinks counts once.
        lost = max((n for sink, n in t.lost.items() if sink != RAM), default=0)
        doubled = max(t.doubled.values(), default=0)
        note = ", ".join(f"{sink} {n}" for sink, n in sorted(t.lost.items()) if n)
        count = sum(1 for r in truth if run.phases.of(r.ts_ms) == phase)
        detail = {"readings": count, "lost": dict(t.lost), "doubled": dict(t.doubled),
                  "examples": t.examples}
        ram = t.lost.get(RAM, 0)
        if ram:
            # Charged apart, and bounded: the local history's uncommitted minutes.
            note = ", ".join(f"{sink} {n}" for sink, n in sorted(t.lost.items())
                             if n and sink != RAM)
            note = (f"local history: {ram} readings of the open minute (not yet committed) "
                    "went with the RAM"
                    + (f"; lost: {note}" if note else ""))
        recovery = run.phases.recovery.get(phase)
        one = promised or phase in ("start-up", "steady after the faults")
        rows.append(Row(phase, [], recovery, "s", None, note=note or f"{count} readings",
                        lost=lost, duplicated=doubled, details=detail, promised=one,
                        ok=lost == 0 and doubled == 0 and recovery is not None if one else None))
    bad = {f: r for f, r in checks.items() if r != "ok"}
    cut_check = notes.get("integrity after the cut", "ok")
    cut_note = f"after the cut: {cut_check}; " if "cut_ms" in notes else ""
    rows.append(Row("PRAGMA integrity_check, every SQLite file", [], None, "", None,
                    note=f"{cut_note}at the end: {bad or 'ok'} ({len(checks)} files)",
                    ok=not bad and cut_check == "ok", details={"files": checks}))
    return rows


def data_path_short(work: Path) -> list[Row]:
    """The same faults, shorter (make test): under 4 minutes."""
    return data_path(work, SHORT)


def two_faults(work: Path) -> list[Row]:
    """A broker kill -9 while the historian is down: not promised, measured to be known."""
    return data_path(work, SHORT, plays=(_broker_killed_historian_down,), promised=False)

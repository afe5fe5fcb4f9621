"""Time sanity without a broker: the ledger books no day that has not happened and no
baseline moves back; points carry exact integer nanoseconds; dead letters stay bounded."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from services.core.contract import DeviceState
from services.core.history.tariffs import Tariff, TariffBook
from services.historian.deadletter import DeadLetters, letter, read
from services.historian.ledger import Ledger
from services.historian.points import flatten, ns_of

NOW = datetime(2026, 3, 12, 12, tzinfo=UTC).timestamp()  # the box's clock in these tests
TODAY = date(2026, 3, 12)
TARIFF = Tariff(valid_from=date(2000, 1, 1), subscription_eur_per_day=0.5,
                prices_eur_per_kwh={"hp": 0.25})


def ledger(path: Path) -> Ledger:
    return Ledger(path, TariffBook(tariffs=[TARIFF]), tz="UTC", now=lambda: NOW)


def booked(led: Ledger) -> dict[str, float]:
    return dict(led.db.execute("SELECT day, sum(wh) FROM ledger_days GROUP BY day"))


def base(led: Ledger) -> tuple[float, float]:
    return led.db.execute("SELECT value, ts FROM ledger_baselines").fetchone()  # type: ignore[no-any-return]


def test_a_reading_from_1900_is_not_booked_and_moves_nothing(tmp_path: Path) -> None:
    led = ledger(tmp_path / "h.sqlite3")
    led.observe_meter("linky", NOW - 7200, {"hp": 1000}, None, "m")
    led.observe_meter("linky", datetime(1900, 1, 1, tzinfo=UTC).timestamp(), {"hp": 5},
                      None, "m")
    led.observe_meter("linky", NOW - 3600, {"hp": 1100}, None, "m")
    assert led.flush() > 0  # a 1900 reading does not break the flush either
    assert booked(led) == {"2026-03-12": 100}
    assert base(led) == (1100, NOW - 3600)


def test_a_reading_from_2030_books_no_future_day(tmp_path: Path) -> None:
    led = ledger(tmp_path / "h.sqlite3")
    led.observe_meter("linky", NOW - 7200, {"hp": 1000}, None, "m")
    led.observe_meter("linky", datetime(2030, 1, 1, tzinfo=UTC).timestamp(), {"hp": 1050},
                      None, "m")
    led.observe_production("pv", datetime(2030, 1, 1, tzinfo=UTC).timestamp(), 10)
    led.observe_meter("linky", NOW - 3600, {"hp": 1100}, None, "m")  # later energy: today
    led.flush()
    assert booked(led) == {"2026-03-12": 100}
    assert max(t for (t,) in led.db.execute("SELECT ts FROM ledger_baselines")) <= NOW


def test_a_clock_stepped_back_leaves_the_baseline_alone(tmp_path: Path) -> None:
    led = ledger(tmp_path / "h.sqlite3")
    led.observe_meter("linky", NOW - 600, {"hp": 1000}, None, "m")
    # A Pi without RTC boots with yesterday's time, before NTP: higher values, older times.
    for i in range(1, 4):
        led.observe_meter("linky", NOW - 86400 + i * 60, {"hp": 1000 + i * 10}, None, "m")
    led.flush()
    assert base(led) == (1000, NOW - 600)
    assert booked(led) == {}  # the first reading is a baseline; the older ones nothing
    assert led.anomalies(TODAY - timedelta(days=1), TODAY) == []
    led.observe_meter("linky", NOW, {"hp": 1040}, None, "m")  # NTP back: all since, once
    led.flush()
    assert booked(led) == {"2026-03-12": 40}


def test_a_future_baseline_on_disk_is_forgotten(tmp_path: Path) -> None:
    # Written by a historian before this rule: it would freeze its counter until 2030.
    led = ledger(tmp_path / "h.sqlite3")
    led.observe_meter("linky", NOW - 60, {"hp": 1000}, None, "m")
    led.flush()
    led.db.execute("UPDATE ledger_baselines SET ts = ?",
                   (datetime(2030, 1, 1, tzinfo=UTC).timestamp(),))
    again = ledger(tmp_path / "h.sqlite3")
    again.observe_meter("linky", NOW, {"hp": 1010}, None, "m")  # a new baseline
    again.observe_meter("linky", NOW + 60, {"hp": 1020}, None, "m")
    again.flush()
    assert base(again) == (1020, NOW + 60)


def test_nanoseconds_are_exact_integers() -> None:
    decoded = DeviceState.decode(b'{"p": 1, "ts": "2025-11-24T16:00:00.123Z"}')
    assert isinstance(decoded, DeviceState) and decoded.ts is not None
    [point] = flatten("t", "d", dict(decoded.fields), decoded.ts)
    assert point.ts_ns == 1_764_000_000_123_000_000
    assert point.to_line().endswith(" 1764000000123000000")
    assert ns_of(1_764_000_000.123) == 1_764_000_000_123_000_000  # float: to the ms
    assert round(1_764_000_000.123 * 1e9) != 1_764_000_000_123_000_000  # what it replaced


@given(st.integers(min_value=946_684_800_000, max_value=4_102_444_800_000))
def test_milliseconds_survive_parse_to_ns_and_back(ms: int) -> None:
    iso = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    decoded = DeviceState.decode(f'{{"p": 1, "ts": "{iso}"}}'.encode())
    assert isinstance(decoded, DeviceState) and decoded.ts is not None
    assert ns_of(decoded.ts) == ms * 1_000_000
    assert ns_of(ms / 1000) == ms * 1_000_000


def test_dead_letters_are_bounded_oldest_first_out(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    dead = DeadLetters(db, max_rows=5)
    for i in range(12):
        dead.add(letter(NOW + i, "p/t/d/state", f"bad {i}", b"x" * 1000))
        if i % 4 == 3:
            db.execute("BEGIN")
            dead.write(db)
            db.execute("COMMIT")
    db.close()
    items = read(path)
    assert [i.reason for i in items] == [f"bad {i}" for i in range(7, 12)]
    assert all(len(i.excerpt) == 200 for i in items) and dead.count == 12
    with closing(sqlite3.connect(path)) as check:
        assert check.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 5


def test_a_newline_in_a_key_does_not_end_the_line() -> None:
    [point] = flatten("t", "d\nx", {"a\nb": 1, "c\r": 2}, 1_764_000_000.0)
    line = point.to_line()
    assert "\n" not in line and "\r" not in line
    assert line == "t,device=d\\nx a\\nb=1.0,c\\r=2.0 1764000000000000000"


def test_commits_follow_the_minute_so_a_power_cut_costs_only_the_open_one() -> None:
    from services.historian.service import COMMIT_GRACE_S, next_commit

    assert next_commit(1_800_000_000.0, 60) == 1_800_000_060 + COMMIT_GRACE_S
    assert next_commit(1_800_000_059.9, 60) == 1_800_000_060 + COMMIT_GRACE_S
    assert next_commit(1_800_000_062.5, 60) == 1_800_000_120 + COMMIT_GRACE_S
    assert next_commit(1_800_000_005.0, 10) == 1_800_000_010 + COMMIT_GRACE_S

"""The history file's SQLite schema and naming: what the writer creates and readers expect.

Minute rows are keyed ``minute << SERIES_BITS | series_id`` in one table per period,
``samples_<n>`` with n = minute // partition_minutes (kept in ``meta``); hourly rollups of
closed hours in ``samples_hourly`` (same key, in hours); series names in ``series``. The
daily ledger's tables live in the same file.
"""

from __future__ import annotations

DEFAULT_FILE = "history.sqlite3"  # under general.data_dir unless historian.db_file says
SERIES_BITS = 16
PARTITION_PREFIX = "samples_"
PARTITION_GLOB = f"{PARTITION_PREFIX}[0-9]*"  # sqlite_schema names of the minute partitions

HISTORY_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    measurement TEXT NOT NULL,
    tags TEXT NOT NULL,            -- JSON object with sorted keys
    field TEXT NOT NULL,
    first_minute INTEGER,
    last_minute INTEGER,           -- both as of the last hourly rollup
    UNIQUE (measurement, tags, field)
);
CREATE TABLE IF NOT EXISTS samples_hourly (
    key INTEGER PRIMARY KEY,       -- hour << 16 | series id
    min REAL NOT NULL, max REAL NOT NULL, sum REAL NOT NULL, count INTEGER NOT NULL,
    hour INTEGER GENERATED ALWAYS AS (key >> 16) VIRTUAL,
    series_id INTEGER GENERATED ALWAYS AS (key & 65535) VIRTUAL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
"""
PARTITION_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    key INTEGER PRIMARY KEY,       -- minute << 16 | series id: time-ordered appends
    min REAL NOT NULL, max REAL NOT NULL, sum REAL NOT NULL, count INTEGER NOT NULL,
    minute INTEGER GENERATED ALWAYS AS (key >> 16) VIRTUAL,
    series_id INTEGER GENERATED ALWAYS AS (key & 65535) VIRTUAL
)"""

# The daily energy ledger: baselines of each counter, Wh per local day, flagged readings.
METER, PRODUCTION = "meter", "production"  # ledger row kinds
EXPORT = "export"  # the index name of a meter's export counter (EAIT)
ENERGY = "energy"  # the index name of a production counter
LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_baselines (
    kind TEXT NOT NULL, name TEXT NOT NULL, idx TEXT NOT NULL,
    value REAL NOT NULL, ts REAL NOT NULL,
    PRIMARY KEY (kind, name, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_meters (
    name TEXT PRIMARY KEY, meter_id TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_days (
    day TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, idx TEXT NOT NULL,
    wh REAL NOT NULL,
    PRIMARY KEY (day, kind, name, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS anomalies (
    id INTEGER PRIMARY KEY, day TEXT NOT NULL, kind TEXT NOT NULL, meter TEXT NOT NULL,
    idx TEXT NOT NULL, old REAL, new REAL, ts REAL NOT NULL, reason TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS anomalies_day ON anomalies (day);
"""


def partition_table(number: int) -> str:
    """The minute table of partition ``number`` (minute // partition_minutes)."""
    return f"{PARTITION_PREFIX}{number}"


def partition_number(table: str) -> int:
    """The partition number of a minute table's name."""
    return int(table[len(PARTITION_PREFIX):])

"""`enerbox history export --from DATE --to DATE`: the local history (or the daily ledger)
as CSV, from the historian's SQLite file."""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from services.core.config import Settings
from services.core.history.schema import DEFAULT_FILE
from services.core.history.tariffs import TariffBook
from services.historian.config import HistorianConfig
from services.historian.history import LocalHistory
from services.historian.ledger import Ledger


def db_path(config: Settings[HistorianConfig]) -> Path:
    """Where the historian keeps its SQLite file."""
    return Path(config.section.db_file or config.general.data_dir / DEFAULT_FILE)


def export(config: Settings[HistorianConfig], start: date, end: date, out: TextIO,
           ledger: bool = False) -> int:
    """Write CSV rows for the local days start..end (inclusive); returns the row count."""
    cfg = config.section
    path = db_path(config)
    if not path.exists():
        raise FileNotFoundError(f"no history at {path} (has the historian run yet?)")
    if ledger:
        book = Ledger(path, TariffBook(tariffs=cfg.tariffs), tz=cfg.timezone,
                      max_power_w=cfg.max_power_w)
        rows = book.daily(start, end)
        writer = csv.writer(out)
        count = 0
        for row in rows:
            data = {k: json.dumps(v) if isinstance(v, dict) else v
                    for k, v in dataclasses.asdict(row).items()}
            if count == 0:
                writer.writerow(data.keys())
            writer.writerow(data.values())
            count += 1
        return count
    tz = ZoneInfo(cfg.timezone)
    first = datetime.combine(start, time(), tz).timestamp()
    last = datetime.combine(end + timedelta(days=1), time(), tz).timestamp()
    return LocalHistory(path, cfg.retention_days).export_csv(out, first, last)


def main(config: Settings[HistorianConfig], start: str, end: str, output: str | None,
         ledger: bool) -> int:
    """CLI entry: exit 2 with a message on bad dates or a missing history."""
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError as exc:
        print(f"enerbox history export: dates are YYYY-MM-DD ({exc})", file=sys.stderr)
        return 2
    if last < first:
        print("enerbox history export: --to is before --from", file=sys.stderr)
        return 2
    try:
        if output:
            with Path(output).open("w", newline="", encoding="utf-8") as out:
                rows = export(config, first, last, out, ledger)
        else:
            rows = export(config, first, last, sys.stdout, ledger)
    except (FileNotFoundError, OSError) as exc:
        print(f"enerbox history export: {exc}", file=sys.stderr)
        return 2
    print(f"{rows} rows", file=sys.stderr)
    return 0

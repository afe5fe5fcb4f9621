"""`enerbox history export --from DATE --to DATE`: the local history (or the daily ledger)
as CSV, from the historian's SQLite file.

The ledger is flat (one column per tariff index, no JSON in cells) and rounded (Wh to the
unit, euros to the cent); ``excel_fr`` writes what a French spreadsheet opens as numbers:
semicolons, decimal commas and a UTF-8 byte order mark.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from services.core.config import Settings
from services.core.history.ledger_read import DayRow
from services.core.history.schema import DEFAULT_FILE
from services.core.history.tariffs import TariffBook
from services.historian.config import HistorianConfig
from services.historian.history import LocalHistory
from services.historian.ledger import Ledger

MAKE_RUN_DATA = Path("run/data")  # where `make run` (services.sim.stack) keeps its data
_DECIMAL = re.compile(r"-?\d+\.\d+")


def db_path(config: Settings[HistorianConfig]) -> Path:
    """Where the historian keeps its SQLite file."""
    return Path(config.section.db_file or config.general.data_dir / DEFAULT_FILE)


def find_db(config: Settings[HistorianConfig]) -> Path:
    """The configured file, else (a relative path, nothing there) `make run`'s, from a checkout.

    FileNotFoundError says where it looked and how to point at the right one.
    """
    path = db_path(config)
    if path.exists():
        return path
    fallback = MAKE_RUN_DATA / DEFAULT_FILE
    if not path.is_absolute() and fallback.exists():
        print(f"note: no history at {path}; reading `make run`'s, {fallback}", file=sys.stderr)
        return fallback
    raise FileNotFoundError(
        f"no history at {path.absolute()} (has the historian run yet?). `make run` keeps it in "
        f"{MAKE_RUN_DATA}/ under the checkout; elsewhere give the box's configuration "
        "(--config, $ENERBOX_CONFIG) or its data directory ($ENERBOX_GENERAL__DATA_DIR)")


def _round(value: float | None, digits: int) -> str:
    """A cell: empty for None, else the value rounded (no trailing '.0' for units)."""
    if value is None:
        return ""
    return str(round(value)) if digits == 0 else f"{value:.{digits}f}"


def ledger_rows(rows: list[DayRow]) -> Iterable[list[str]]:
    """Header then one flat row per day and meter: energy per index, then its cost."""
    indexes = sorted({k for row in rows for k in row.import_wh_by_index})
    yield ["day", "meter", *(f"import_wh_{k}" for k in indexes),
           *(f"import_cost_eur_{k}" for k in indexes), "import_wh", "import_cost_eur",
           "subscription_eur", "total_cost_eur", "export_wh", "export_revenue_eur",
           "production_wh", "self_consumption_wh", "self_sufficiency", "flags"]
    for r in rows:
        yield [r.day.isoformat(), r.meter,
               *(_round(r.import_wh_by_index.get(k), 0) for k in indexes),
               *(_round(r.import_cost_eur_by_index.get(k), 2) for k in indexes),
               _round(r.import_wh, 0), _round(r.import_cost_eur, 2),
               _round(r.subscription_eur, 2), _round(r.total_cost_eur, 2),
               _round(r.export_wh, 0), _round(r.export_revenue_eur, 2),
               _round(r.production_wh, 0), _round(r.self_consumption_wh, 0),
               _round(r.self_sufficiency, 3), str(r.flags)]


def to_excel_fr(text: str) -> str:
    """Comma-separated text as a French spreadsheet reads it: ';' and decimal commas."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    for row in csv.reader(io.StringIO(text)):
        writer.writerow([c.replace(".", ",") if _DECIMAL.fullmatch(c) else c for c in row])
    return out.getvalue()


def export(config: Settings[HistorianConfig], start: date, end: date, out: TextIO,
           ledger: bool = False) -> int:
    """Write CSV rows for the local days start..end (inclusive); returns the row count."""
    cfg = config.section
    path = find_db(config)
    if ledger:
        book = Ledger(path, TariffBook(tariffs=cfg.tariffs), tz=cfg.timezone,
                      max_power_w=cfg.max_power_w)
        rows = book.daily(start, end)
        csv.writer(out).writerows(ledger_rows(rows))
        return len(rows)
    tz = ZoneInfo(cfg.timezone)
    first = datetime.combine(start, time(), tz).timestamp()
    last = datetime.combine(end + timedelta(days=1), time(), tz).timestamp()
    return LocalHistory(path, cfg.retention_days).export_csv(out, first, last)


def main(config: Settings[HistorianConfig], start: str, end: str, output: str | None,
         ledger: bool, *, excel_fr: bool = False) -> int:
    """CLI entry: exit 2 with a message on bad dates or a missing history."""
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError as exc:
        print(f"enerbox history export: dates are YYYY-MM-DD ({exc})", file=sys.stderr)
        return 2
    if last < first:
        print("enerbox history export: --to is before --from", file=sys.stderr)
        return 2
    buffer = io.StringIO()
    try:
        rows = export(config, first, last, buffer, ledger)
    except (FileNotFoundError, OSError) as exc:
        print(f"enerbox history export: {exc}", file=sys.stderr)
        return 2
    text = to_excel_fr(buffer.getvalue()) if excel_fr else buffer.getvalue()
    # The byte order mark tells Excel the file is UTF-8 (accents in names).
    encoding = "utf-8-sig" if excel_fr else "utf-8"
    try:
        if output:
            with Path(output).open("w", newline="", encoding=encoding) as out:
                out.write(text)
        else:
            sys.stdout.write("\ufeff" + text if excel_fr else text)
    except OSError as exc:
        print(f"enerbox history export: {exc}", file=sys.stderr)
        return 2
    print(f"{rows} rows", file=sys.stderr)
    return 0

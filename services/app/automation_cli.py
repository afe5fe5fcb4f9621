"""`enerbox automation replay`: the dry run's command line (config, input, output, exits).

The replay itself is services.automation.replay (pure); this reads the whole configuration
(the automation section and the relays it drives), the rows (a JSONL file, stdin, or a day of
the local history), prints one JSON line per relay change on stdout and the summary on
stderr. Exit 2 with the reason on a bad configuration or an unreadable row.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import threading
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import IO

from services.app.root_config import history_file, load_config
from services.automation.config import AutomationConfig
from services.automation.replay import ReplayError, replay
from services.automation.replay_history import as_jsonl, history_rows
from services.automation.replay_rows import Row, RowError, load_rows
from services.core.config import ConfigError
from services.core.history.read import HistoryReader


class _HistoryFile(HistoryReader):
    """The historian's SQLite file, read-only."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        self.db_lock = threading.RLock()


def _fail(message: str) -> int:
    print(f"enerbox automation replay: {message}", file=sys.stderr)
    return 2


def main(args: argparse.Namespace) -> int:
    """Run `enerbox automation replay`; the exit code."""
    if (args.input is None) == (args.from_history is None):
        return _fail("give either INPUT.jsonl or --from-history DATE")
    try:
        config = load_config(args.config, required=True)
    except ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        return 2
    try:
        if args.from_history is not None:
            rows = _history_rows(history_file(config), config.automation, args.from_history,
                                 args.write_rows)
        else:
            rows = _file_rows(args.input)
        result = replay(config.automation, config.relays.relays, rows,
                        config.relays.timezone)
    except (RowError, ReplayError, OSError) as exc:
        return _fail(str(exc))
    out = sys.stdout
    for line in result.lines:
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
    out.flush()
    print(json.dumps(result.summary), file=sys.stderr)
    return 0


def _file_rows(name: str) -> list[Row]:
    """The rows of a JSONL file ('-': stdin)."""
    try:
        with ExitStack() as stack:
            source: IO[str] = sys.stdin if name == "-" else stack.enter_context(
                Path(name).open(encoding="utf-8"))
            return load_rows(source)
    except OSError as exc:
        raise ReplayError(f"cannot read {name}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ReplayError(f"{name} is not UTF-8 text") from None


def _history_rows(path: Path, automation: AutomationConfig, day_text: str,
                  write_to: str | None) -> list[Row]:
    """The rows of an automation day from the local history (and written out if asked)."""
    try:
        day = date.fromisoformat(day_text)
    except ValueError:
        raise ReplayError(f"--from-history {day_text!r} is not a date YYYY-MM-DD") from None
    if not path.exists():
        raise ReplayError(f"no history at {path} (has the historian run yet?)")
    reader = _HistoryFile(path)
    try:
        rows = history_rows(reader, automation, day)
    except sqlite3.Error as exc:
        raise ReplayError(f"cannot read the history {path}: {exc}") from None
    finally:
        reader.db.close()
    if not rows:
        raise ReplayError(f"the history {path} has nothing the automation reads on {day}")
    if write_to is not None:
        with Path(write_to).open("w", encoding="utf-8") as out:
            out.writelines(line + "\n" for line in as_jsonl(rows))
    return rows

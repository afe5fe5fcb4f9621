"""`enerbox automation replay` (the dry run's command line: config, input, output, exits)
and `enerbox automation record` (the bus's inputs as replay rows, to replay any day).

The replay itself is services.app.replay (pure); this reads the whole configuration
(the automation section and the relays it drives), the rows (a JSONL file, stdin, or a day of
the local history), prints one JSON line per relay change on stdout and the summary on
stderr. Exit 2 with the reason on a bad configuration or an unreadable row.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import sys
import threading
from contextlib import ExitStack
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from services.app.replay import ReplayError, replay
from services.app.root_config import history_file, load_config
from services.automation.config import AutomationConfig
from services.automation.replay_history import as_jsonl, history_rows
from services.automation.replay_rows import PLAYED, READ, Row, RowError, load_rows
from services.core.bus import new_client
from services.core.config import ConfigError
from services.core.contract import Rejection, TopicKind, Topics, decode_json
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


# -- `enerbox automation record` ------------------------------------------------------------


def record_row(topics: Topics, topic: str, payload: bytes, received: datetime
               ) -> dict[str, Any] | None:
    """A received message as a replay row; None for what the replay does not read."""
    parsed = topics.parse(topic)
    if parsed is None or parsed.kind not in READ or (
            parsed.kind == TopicKind.STATE and parsed.service in PLAYED):
        return None
    value: Any = payload.decode("utf-8", "replace") if payload else None
    if payload[:1] == b"{":
        data = decode_json(payload)
        value = value if isinstance(data, Rejection) else data
    return {"ts": received.isoformat(timespec="milliseconds"),
            "topic": topic[len(topics.prefix) + 1:], "payload": value}


def record(args: argparse.Namespace) -> int:
    """Run `enerbox automation record OUT.jsonl`: the bus's inputs as replay rows, until
    --seconds have passed or SIGINT/SIGTERM."""
    try:
        config = load_config(args.config, required=True)
    except ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        return 2
    tz = ZoneInfo(config.automation.timezone)
    topics = Topics(config.mqtt.prefix, "automation")
    filters = [topics.any_device(TopicKind.STATE), topics.any_device(TopicKind.AVAILABILITY),
               topics.any_service(TopicKind.STATUS), topics.any_relay(TopicKind.RELAY_SET),
               topics.any_relay(TopicKind.RELAY_SHED), topics.any_automation_set]
    try:
        out = Path(args.output).open("w", encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        print(f"enerbox automation record: cannot write {args.output}: {exc.strerror}",
              file=sys.stderr)
        return 2
    stop = threading.Event()
    lock = threading.Lock()
    count = [0]

    def on_connect(client: mqtt.Client, *_args: object) -> None:
        client.subscribe([(f, SubscribeOptions(qos=1)) for f in filters])

    def on_subscribe(*_args: object) -> None:
        print(f"enerbox automation record: recording {topics.prefix}/... into {args.output}",
              file=sys.stderr, flush=True)

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        row = record_row(topics, msg.topic, bytes(msg.payload), datetime.now(tz))
        if row is not None:
            with lock:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                out.flush()  # a recording cut short keeps what it has
                count[0] += 1

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_a: stop.set())
    client = new_client(config.mqtt, f"enerbox-record-{os.getpid()}")
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect_async(config.mqtt.host, config.mqtt.port, keepalive=config.mqtt.keepalive_s)
    client.loop_start()
    try:
        stop.wait(args.seconds)
    finally:
        client.disconnect()
        client.loop_stop()
        with lock:
            out.close()
    print(json.dumps({"rows": count[0]}), file=sys.stderr)
    return 0

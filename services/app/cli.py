"""The `enerbox` command: run, decode, config check/docs, history export, sim."""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from services.app.registry import SERVICES
from services.core.config import ConfigError, Settings, config_path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="enerbox", description="enerbox home energy box")
    parser.add_argument("--version", action="version", version=f"enerbox {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a service, or 'all' of them in one process")
    run.add_argument("name", choices=[*SERVICES, "all"])
    run.add_argument("--config", help="configuration file (default: $ENERBOX_CONFIG)")

    decode = sub.add_parser("decode", help="decode a raw capture to JSON lines")
    decode.add_argument("protocol", choices=["teleinfo", "vedirect", "sunspec"])
    decode.add_argument("file", help="capture file, bytes as read from the port; '-' = stdin "
                        "(sunspec: a register image, JSON)")
    decode.add_argument("--mode", choices=["historique", "standard"], help="TIC mode (auto)")

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate a configuration file")
    check.add_argument("file", nargs="?", help="file to check (default: $ENERBOX_CONFIG)")
    docs = config_sub.add_parser("docs", help="print docs/CONFIG.md (or --mqtt: docs/MQTT.md)")
    docs.add_argument("--mqtt", action="store_true", help="the topic and field reference")

    history = sub.add_parser("history", help="the historian's local history")
    history_sub = history.add_subparsers(dest="history_command", required=True)
    export = history_sub.add_parser("export", help="one-minute aggregates (or --ledger) as CSV")
    export.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
    export.add_argument("--to", dest="end", required=True, help="last day, YYYY-MM-DD")
    export.add_argument("--ledger", action="store_true", help="the daily energy and cost ledger")
    export.add_argument("--output", "-o", help="CSV file (default: stdout)")
    export.add_argument("--excel-fr", action="store_true", help="for a French spreadsheet: "
                        "';' between columns, decimal commas, a UTF-8 byte order mark")
    export.add_argument("--config", help="configuration file (default: $ENERBOX_CONFIG)")
    dead = history_sub.add_parser("dead-letters", help="messages the historian set aside, "
                                  "as JSON lines (time, topic, reason, excerpt)")
    dead.add_argument("--config", help="configuration file (default: $ENERBOX_CONFIG)")

    automation = sub.add_parser("automation", help="automation tools (replay)")
    automation_sub = automation.add_subparsers(dest="automation_command", required=True)
    _replay_arguments(automation_sub)

    sub.add_parser("sim", help="device simulators (see 'enerbox sim -h')", add_help=False)
    return parser


REPLAY_HELP = "run the automation on a recorded day with a simulated clock (a dry run)"
FROM_HISTORY_HELP = (
    "replay automation day DATE (YYYY-MM-DD, local) from the local history instead of a "
    "file: each minute's mean of the fields the signals and the tariff read (minute means "
    "smooth spikes; text fields are not kept: the tariff period and Tempo colour come from "
    "the meter's index that advanced)")


def _replay_arguments(tools: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`enerbox automation replay ...`."""
    rep = tools.add_parser("replay", help=REPLAY_HELP, description=REPLAY_HELP + ". Prints "
                           "one JSON line per relay at the start and per change of output or "
                           "source; the summary on stderr.")
    rep.add_argument("input", nargs="?", help="JSONL rows {ts, topic, payload}; '-' = stdin")
    rep.add_argument("--config", help="configuration file (default: $ENERBOX_CONFIG)")
    rep.add_argument("--from-history", metavar="DATE", help=FROM_HISTORY_HELP)
    rep.add_argument("--write-rows", metavar="FILE", help="with --from-history: also write "
                     "the rows it built as JSONL (to edit and replay)")
    rec = tools.add_parser("record", help="record the automation's inputs from the broker "
                           "as replay rows (JSONL), until --seconds or Ctrl-C")
    rec.add_argument("output", help="JSONL file to write")
    rec.add_argument("--seconds", type=float, help="stop after this long (default: Ctrl-C)")
    rec.add_argument("--config", help="configuration file (default: $ENERBOX_CONFIG)")


def _version() -> str:
    """The installed package's version ('unknown' when run from a bare checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("enerbox")
    except PackageNotFoundError:
        return "unknown"


def _decode_with(args: argparse.Namespace, source: IO[bytes]) -> dict[str, object]:
    if args.protocol == "vedirect":
        from services.vedirect.decode import decode_stream as vedirect

        return vedirect(source, sys.stdout)
    from services.teleinfo.decode import decode_stream as teleinfo
    from services.teleinfo.protocol import Mode

    return teleinfo(source, sys.stdout, Mode(args.mode) if args.mode else None)


def _decode(args: argparse.Namespace) -> int:
    from services.app.decode_hints import Recorder, hints

    if args.protocol == "sunspec":  # a JSON register image, not a byte stream
        from services.inverter.decode import main as sunspec

        code = sunspec(args.file)
        head = _head(args.file) if code and args.file != "-" else None
        if head is not None:
            _hint(hints("sunspec", None, head, 0))
        return code
    with ExitStack() as stack:
        raw: IO[bytes]
        if args.file == "-":
            raw = sys.stdin.buffer
        else:
            try:
                raw = stack.enter_context(Path(args.file).open("rb"))
            except OSError as exc:
                print(f"enerbox decode: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
                return 2
        recorder = Recorder(raw)  # keeps the first bytes, for the hints
        source = io.BufferedReader(recorder)
        try:
            summary = _decode_with(args, source)
        except BrokenPipeError:  # `enerbox decode ... | head`: the reader has seen enough
            sys.stdout = Path(os.devnull).open("w")  # noqa: SIM115 - silence the flush at exit
            return 0
        except OSError as exc:
            print(f"enerbox decode: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
            return 2
    sys.stdout.flush()
    print(json.dumps(summary), file=sys.stderr)
    readings = summary["readings"]
    _hint(hints(args.protocol, args.mode, bytes(recorder.sample),
                readings if isinstance(readings, int) else 0))
    return 0


def _hint(lines: list[str]) -> None:
    for line in lines:
        print(f"hint: {line}", file=sys.stderr)


def _head(path: str) -> bytes | None:
    """The first bytes of a file (None if unreadable: its error was printed)."""
    from services.app.decode_hints import SAMPLE_BYTES

    try:
        with Path(path).open("rb") as f:
            return f.read(SAMPLE_BYTES)
    except OSError:
        return None


def _config_check(args: argparse.Namespace) -> int:
    """Errors (values, references between sections) exit 1; warnings (a serial port not
    plugged in yet) are printed and still exit 0."""
    from services.app.checks import warnings
    from services.app.root_config import load_config

    path = config_path(args.file)
    try:
        config = load_config(path, required=True)
    except ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        return 1
    for warning in warnings(config):
        print(f"warning: {warning}", file=sys.stderr)
    for note in _lenient_notes(path):
        print(f"note: {note}", file=sys.stderr)
    print(f"{path}: OK")
    return 0


def _lenient_notes(path: Path) -> list[str]:
    """How YAML 1.1 typed unquoted automation words and times, and how they were read."""
    import yaml

    from services.automation.config import lenient_readings

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return []  # load_config read it a moment ago; nothing to add
    section = raw.get("automation") if isinstance(raw, dict) else None
    return lenient_readings(section) if section is not None else []


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0911 - a return per command
    """Entry point of the `enerbox` console script."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sim"]:
        from services.sim.cli import main as sim_main

        return sim_main(argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "run":
        from services.app.runner import run

        names = list(SERVICES) if args.name == "all" else [args.name]
        return run(names, args.config)
    if args.command == "decode":
        return _decode(args)
    if args.command == "history":
        return _history(args)
    if args.command == "automation":
        from services.app import automation_cli

        if args.automation_command == "record":
            return automation_cli.record(args)
        return automation_cli.main(args)
    if args.config_command == "docs":
        from services.app.docs import config_markdown, mqtt_markdown

        print(mqtt_markdown() if args.mqtt else config_markdown())
        return 0
    return _config_check(args)


def _history(args: argparse.Namespace) -> int:
    from services.app.root_config import load_config, settings_for
    from services.historian.export import main as export_main

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        return 2
    settings = settings_for("historian", config)
    if args.history_command == "dead-letters":
        return _dead_letters(settings)
    return export_main(settings, args.start, args.end, args.output, args.ledger,
                       excel_fr=args.excel_fr)


def _dead_letters(settings: Settings[Any]) -> int:
    from datetime import UTC, datetime

    from services.historian.deadletter import read
    from services.historian.export import find_db

    try:
        path = find_db(settings)
    except FileNotFoundError as exc:
        print(f"enerbox history dead-letters: none: {exc}", file=sys.stderr)
        return 0  # no history yet: no letter set aside either
    for item in read(path):
        when = datetime.fromtimestamp(item.ts, UTC).isoformat(timespec="milliseconds")
        print(json.dumps({"time": when, "topic": item.topic, "reason": item.reason,
                          "excerpt": item.excerpt}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The replay's input: one JSON object a line, `{"ts", "topic", "payload"}` (DESIGN.md,
"Replay"), read and checked here so that every problem names its line.

`topic` is without the prefix. The replay reads `<service>/<device>/state`,
`<service>/<device>/availability`, `<service>/status`, `relays/<id>/set` and
`relays/<id>/shed`, and `automation/<relay>/set` (a load's automation switched off or on);
what the replay itself plays (`relays/<id>/state`, `relays/<id>/auto`,
the automation's own topics) and other leaves (raw, diagnostics, per-field scalars) are
skipped, so a recording of the whole bus replays as it is. Payloads are decoded by the
contract (services.core.contract), never here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from services.core.contract import (
    AutomationSwitch,
    DeviceState,
    Presence,
    Rejection,
    RelayCommand,
    ShedFlag,
    Topic,
    TopicKind,
    Topics,
)
from services.core.contract.messages import parse_ts, to_json

MAX_LINE_BYTES = 64 * 1024
PREFIX = "enerbox"  # any valid prefix: rows carry topics without one
READ = frozenset({TopicKind.STATE, TopicKind.AVAILABILITY, TopicKind.STATUS,
                  TopicKind.RELAY_SET, TopicKind.RELAY_SHED, TopicKind.AUTOMATION_SET})
PLAYED = frozenset({"relays", "automation"})  # their states are the replay's own output


class RowError(ValueError):
    """A row that cannot be replayed: the message names its line."""


@dataclass(frozen=True, slots=True)
class Row:
    """One input message: when it was received, its parsed topic and its payload bytes."""

    line: int
    ts: datetime
    topic: Topic
    payload: bytes
    message: RelayCommand | ShedFlag | AutomationSwitch | None = None  # commands, decoded
    epoch: float = math.nan  # its time in epoch seconds (set from ts when not given)

    def __post_init__(self) -> None:
        if math.isnan(self.epoch):  # a zoned datetime's timestamp() is slow: once per row
            object.__setattr__(self, "epoch", self.ts.timestamp())


def _payload_bytes(value: object) -> bytes:
    """A JSON object as published; a string as its text (ON, online); null: a cleared topic."""
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode()
    return to_json(value).encode()


def _check(kind: TopicKind, payload: bytes
           ) -> Rejection | RelayCommand | ShedFlag | AutomationSwitch | None:
    """The contract's verdict on a payload (None: fine, nothing to keep)."""
    if not payload:
        return None  # a cleared retained message: no news
    if kind == TopicKind.STATE:
        state = DeviceState.decode(payload)
        return state if isinstance(state, Rejection) else None
    if kind in (TopicKind.AVAILABILITY, TopicKind.STATUS):
        presence = Presence.decode(payload)
        return presence if isinstance(presence, Rejection) else None
    if kind == TopicKind.RELAY_SET:
        return RelayCommand.decode(payload)
    if kind == TopicKind.AUTOMATION_SET:
        return AutomationSwitch.decode(payload)
    return ShedFlag.decode(payload)


def parse_row(text: str, line: int, topics: Topics | None = None) -> Row | None:
    """One line as a Row; None for a blank line or a topic the replay skips."""
    if not text.strip():
        return None
    if len(text) > MAX_LINE_BYTES:
        raise RowError(f"line {line}: longer than {MAX_LINE_BYTES} bytes")
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise RowError(f"line {line}: not JSON ({exc})") from None
    if not isinstance(data, dict) or not {"ts", "topic", "payload"} <= data.keys():
        raise RowError(f'line {line}: expected an object with "ts", "topic" and "payload"')
    ts = parse_ts(data["ts"])
    if ts is None or not math.isfinite(ts.timestamp()):
        raise RowError(f"line {line}: ts {data['ts']!r} is not an ISO 8601 time with a zone "
                       "(such as 2026-07-01T10:00:00+02:00)")
    name = data["topic"]
    topic = (topics or Topics(PREFIX, "automation")).parse(f"{PREFIX}/{name}") if isinstance(
        name, str) else None
    if topic is None:
        raise RowError(f"line {line}: topic {name!r} is not a topic without its prefix, such "
                       "as teleinfo/linky/state")
    if topic.kind not in READ or (topic.kind == TopicKind.STATE and topic.service in PLAYED):
        return None
    payload = _payload_bytes(data["payload"])
    verdict = _check(topic.kind, payload)
    if isinstance(verdict, Rejection):
        raise RowError(f"line {line}: {name}: {verdict.reason}")
    return Row(line, ts, topic, payload, verdict)


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def read_rows(lines: Iterable[str]) -> Iterator[Row]:
    """Every replayable row of a JSONL text, in file order; RowError names a bad line."""
    topics = Topics(PREFIX, "automation")
    for number, text in enumerate(lines, start=1):
        row = parse_row(text, number, topics)
        if row is not None:
            yield row


def load_rows(source: IO[str]) -> list[Row]:
    """The rows of a file, in time order (a recording's rows may arrive slightly out of
    order; rows of one time keep their file order)."""
    rows = list(read_rows(source))
    rows.sort(key=lambda r: r.epoch)
    return rows

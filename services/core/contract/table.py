"""The topic table of docs/MQTT.md, kept next to the builders it documents (a test checks
that every TopicKind has a row)."""

from __future__ import annotations

from dataclasses import dataclass

from services.core.contract.messages import EventKind
from services.core.contract.orders import ORDERS
from services.core.contract.topics import TopicKind


@dataclass(frozen=True, slots=True)
class TopicDoc:
    """One row: the topic pattern, its payload, whether it is retained, who writes it."""

    kind: TopicKind
    pattern: str
    payload: str
    retained: str
    who: str


_ORDERS = "\\|".join(f'"{o}"' for o in ORDERS)
ROWS: tuple[TopicDoc, ...] = (
    TopicDoc(TopicKind.STATUS, "<p>/<service>/status", "`online` / `offline` (last will)",
             "yes", "every service"),
    TopicDoc(TopicKind.HEARTBEAT, "<p>/<service>/heartbeat",
             'JSON `{"ts", "interval_s"}` while the service\'s workers run', "yes, expires "
             "after 3 intervals", "control services"),
    TopicDoc(TopicKind.AVAILABILITY, "<p>/<service>/<device>/availability",
             "`online` / `offline` (the device's own last will)", "yes", "device services"),
    TopicDoc(TopicKind.STATE, "<p>/<service>/<device>/state",
             "JSON: the fields below + `ts` (ISO 8601 UTC)", "yes, with message expiry",
             "device and control services"),
    TopicDoc(TopicKind.JOURNAL, "<p>/<service>/<device>/journal",
             "the same JSON as each `state`, once per state, QoS 1, no message expiry: the "
             "historian's stream. Held by its publisher while the broker or the historian's "
             "session is away, and the last 30 s sent again after a reconnection: readers "
             "dedupe on (topic, `ts`)", "no", "device and control services"),
    TopicDoc(TopicKind.FIELD, "<p>/<service>/<device>/<field>",
             "one plain value per field (lists and objects as JSON, booleans `true`/`false`), "
             "sent when it changes, cleared when the field leaves the reading", "yes",
             "device services"),
    TopicDoc(TopicKind.RAW, "<p>/<service>/<device>/raw", "JSON of the protocol's own labels",
             "no", "device services"),
    TopicDoc(TopicKind.DIAGNOSTICS, "<p>/<service>/<device>/diagnostics",
             "JSON counters (frames/blocks ok and bad, reconnects, last error)", "yes",
             "device services"),
    TopicDoc(TopicKind.RELAY_SET, "<p>/relays/<relay>/set",
             '`ON`, `OFF`, `AUTO` (any case), `{"mode": "on"\\|"off"\\|"auto", "for_s": 3600}` '
             '(1 s to a year) or `"until": "14:00"` (the next time the local clock, '
             '`relays.timezone`, reads it), '
             f'`{{"order": {_ORDERS}}}` (with `for_s` or `until` too); with an MQTT v5 '
             "response topic "
             "and correlation data, answered on it", "no", "api, users, automations"),
    TopicDoc(TopicKind.REPLIES, "<p>/<service>/replies",
             'JSON `{"relay", "accepted", "applied", "reason", "mode", "order", "for_s"}` '
             "with the request's correlation data", "no", "relays"),
    TopicDoc(TopicKind.RELAY_SHED, "<p>/relays/<relay>/shed",
             'JSON `{"shed": bool, "reason": "...", "ts": ...}`', "yes", "shedding only (ACL)"),
    TopicDoc(TopicKind.RELAY_AUTO, "<p>/relays/<relay>/auto",
             'JSON `{"state": "on"\\|"off"}` or `{"order": ...}`, with `reason` and `ts`',
             "yes, with message expiry (3 ticks, at least 30 s), re-sent every tick; "
             "cleared (empty) while the load's automation is disabled",
             "automation only (ACL)"),
    TopicDoc(TopicKind.STATE, "<p>/automation/<relay>/state",
             "JSON `{\"wish\", \"status\", \"hold\", \"reason\", \"on_today_s\", "
             "\"remaining_s\", \"min_on_s\", \"by\", \"latest_start\", "
             "\"starts_today\", \"enabled\", \"ts\"}`; `status` one of idle, surplus, "
             "catch_up, required, scheduled, blocked, done, unreachable, stale, disabled",
             "yes, with message expiry", "automation"),
    TopicDoc(TopicKind.AUTOMATION_SET, "<p>/automation/<relay>/set",
             '`ON`, `OFF` (any case) or `{"enabled": true\\|false}`: the load\'s '
             '"automation enabled" switch (off: its wish is cleared, the relay goes to its '
             "default)", "no", "api, users, Home Assistant, Node-RED"),
    TopicDoc(TopicKind.PULSES_SET, "<p>/pulses/<meter>/set",
             '`{"energy_wh": 1234567}` (or the plain number): the index read on the meter\'s '
             "display, in Wh; never below the present index (refused with a `rejected` "
             "event)", "no", "api, users"),
    TopicDoc(TopicKind.EVENTS, "<p>/<service>/events",
             'JSON `{"type": ..., "ts": ..., ...}`', "no", "any"),
)


def topic_table() -> str:
    """The Markdown table of every topic."""
    lines = ["| topic | payload | retained | who |", "|---|---|---|---|"]
    lines += [f"| `{r.pattern}` | {r.payload} | {r.retained} | {r.who} |" for r in ROWS]
    lines.append("| `homeassistant/device/<id>/config` | Home Assistant device discovery, "
                 "re-sent when `homeassistant/status` is `online` | yes | device and control "
                 "services |")
    return "\n".join(lines) + "\n"


def event_list() -> str:
    """Every event type, for the docs."""
    return "Event types: " + ", ".join(f"`{k.value}`" for k in EventKind) + ".\n"

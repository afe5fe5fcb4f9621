"""`enerbox automation replay --from-history DATE`: a day's rows from the local history.

The historian keeps one-minute aggregates of numeric fields only. Each minute of the
automation day gives, per device the automation reads, a `<service>/<device>/state` row with
the minute's mean of each field its signals name, repeated within the minute often enough
that no signal ages past its `stale_after_s` (a minute with no data gives no row: the signal
goes stale, as it did). Minute means smooth spikes (a kettle, a passing cloud).

Text fields are not in the history. For the tariff source, `tariff_period` is the name of
the index of `energy_import_by_index_wh` that advanced in that minute (teleinfo names the
running index so), the last one that did while none advances (export, no draw);
`tempo_today` follows from a Tempo index's colour (`red_hp`); `ejp_notice` is kept (a
boolean is stored as 0/1). `tempo_tomorrow` and text signals (a charger state) stay absent.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime

from services.automation.config import AutomationConfig
from services.automation.daily import AutomationDay
from services.automation.replay_rows import Row
from services.core.contract import Topic, TopicKind
from services.core.contract.messages import to_json
from services.core.history.read import HistoryReader

INDEX_FIELD = "energy_import_by_index_wh"
COLOURS = ("blue", "white", "red")
MAX_REPEAT_S = 60.0
Device = tuple[str, str]


def _split(source: str) -> Device:
    service, _, device = source.partition("/")
    return service, device


def repeat_s(config: AutomationConfig) -> float:
    """How often a minute's row is repeated: half the shortest freshness limit, 1 to 60 s."""
    limits = [s.stale_after_s for s in config.signals.values()]
    if config.tariff is not None:
        limits.append(config.tariff.stale_after_s)
    return max(1.0, min(MAX_REPEAT_S, *(x / 2 for x in limits))) if limits else MAX_REPEAT_S


def _wanted(config: AutomationConfig) -> dict[Device, set[str]]:
    fields: dict[Device, set[str]] = defaultdict(set)
    for signal in config.signals.values():
        fields[_split(signal.source)].add(signal.field)
    if config.tariff is not None:
        fields[_split(config.tariff.source)].add("ejp_notice")
    return fields


def _means(reader: HistoryReader, device: Device, field: str, start: float, end: float
           ) -> dict[float, float]:
    series = reader.series(device[0], field, start, end, 60, tags={"device": device[1]})
    return {t: mean for t, _, mean, _ in series if mean is not None}


def _periods(reader: HistoryReader, device: Device, start: float, end: float
             ) -> dict[float, str]:
    """The running index per minute: the one that advanced, else the last that did."""
    names = [s["tags"]["index"] for s in reader.list_series()
             if s["measurement"] == device[0] and s["field"] == INDEX_FIELD
             and s["tags"].get("device") == device[1] and "index" in s["tags"]]
    lead = start - 3600.0  # an hour before the day: the period it starts in
    tops: dict[str, dict[float, float]] = {}
    for name in names:
        series = reader.series(device[0], INDEX_FIELD, lead, end, 60,
                               tags={"device": device[1], "index": name})
        tops[name] = {t: high for t, _, _, high in series if high is not None}
    out: dict[float, str] = {}
    running: str | None = None
    last: dict[str, float] = {}
    t = lead
    while t < end:
        rises = {n: top[t] - last[n] for n, top in tops.items() if t in top and n in last}
        moved = [n for n, rise in rises.items() if rise > 0]
        if moved:
            running = max(moved, key=lambda n: rises[n])
        for n, top in tops.items():
            if t in top:
                last[n] = top[t]
        if running is not None and t >= start and any(t in top for top in tops.values()):
            out[t] = running  # only in minutes the meter spoke: a silent one stays silent
        t += 60.0
    return out


def _tariff_fields(period: str | None) -> dict[str, str]:
    if period is None:
        return {}
    out = {"tariff_period": period}
    colour = period.split("_")[0]
    if colour in COLOURS:
        out["tempo_today"] = colour
    return out


def history_rows(reader: HistoryReader, config: AutomationConfig, day: date) -> list[Row]:
    """The rows of automation day ``day`` (local), in time order."""
    aday = AutomationDay.of(config.timezone, config.day_starts_at)
    start, end = aday.start(day).timestamp(), aday.end(day).timestamp()
    tariff = None if config.tariff is None else _split(config.tariff.source)
    step = repeat_s(config)
    rows: list[Row] = []
    for device, fields in sorted(_wanted(config).items()):
        means = {f: _means(reader, device, f, start, end) for f in sorted(fields)}
        periods = _periods(reader, device, start, end) if device == tariff else {}
        topic = Topic(TopicKind.STATE, device[0], device[1])
        minutes = sorted({t for m in means.values() for t in m} | set(periods))
        for t in minutes:
            payload: dict[str, object] = {f: m[t] for f, m in means.items() if t in m}
            if "ejp_notice" in payload:
                payload["ejp_notice"] = float(payload["ejp_notice"]) >= 0.5  # type: ignore[arg-type]
            payload.update(_tariff_fields(periods.get(t)))
            data = to_json(payload).encode()
            rows.extend(Row(0, datetime.fromtimestamp(t + k * step, aday.tz), topic, data)
                        for k in range(max(1, int(60 // step))) if k * step < 60)
    rows.sort(key=lambda r: r.epoch)
    return rows


def as_jsonl(rows: list[Row]) -> Iterator[str]:
    """The rows in the replay's input format (to edit and replay again)."""
    for row in rows:
        topic = f"{row.topic.service}/{row.topic.device}/{row.topic.kind.value}"
        yield json.dumps({"ts": row.ts.isoformat(), "topic": topic,
                          "payload": json.loads(row.payload)}, ensure_ascii=False)


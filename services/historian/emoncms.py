"""emoncms sink: inputs posted in bulk (``/input/bulk.json``) from a spool of JSON items.

One spool item is one bulk entry ``[unix_time, node, {"name": value}, {"name": value}, ...]``.
emoncms reads only the first key of each object in an entry (input_methods.php: ``key()`` /
``current()``), so every input gets an object of its own. The request is a form POST with
``apikey`` (in the body: a URL ends up in access logs), ``data`` and ``sentat``: with sentat,
emoncms stamps an entry at ``its clock - sentat + unix_time``, which corrects our clock's
offset from the server's (emonhub posts the same way).
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from services.historian.drain import (
    BadDataError,
    EventCallback,
    SinkDownError,
    SpoolDrain,
    http_answers,
)
from services.historian.points import Point
from services.historian.spool import Spool

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _name(text: str) -> str:
    # emoncms strips anything else from node and input names; strip it first, predictably.
    return _UNSAFE.sub("_", text)


def emoncms_items(points: list[Point], node_prefix: str = "enerbox") -> list[str]:
    """Spool items: one JSON bulk entry per (second, node), inputs named field[_phase|_index]."""
    entries: dict[tuple[int, str], list[dict[str, float]]] = {}
    for point in points:
        node = _name(f"{node_prefix}_{point.measurement}_{point.tag('device') or ''}")
        suffix = "".join(f"_{value}" for key, value in point.tags if key != "device")
        inputs = entries.setdefault((point.ts_ns // 1_000_000_000, node), [])
        inputs.extend({_name(field + suffix): value} for field, value in point.fields)
    return [
        json.dumps([ts, node, *inputs], separators=(",", ":"), allow_nan=False)
        for (ts, node), inputs in entries.items()
    ]


class EmoncmsSink(SpoolDrain):
    """Drains a spool of bulk entries into emoncms inputs."""

    name = "emoncms"
    # emoncms stores a bulk request's entries one by one and stops at the first bad one:
    # the entries before it are already in. Re-sending halves would store those twice, so a
    # refused batch is dropped whole (with an event) instead.
    split_bad_batches = False

    def __init__(
        self,
        spool: Spool,
        url: str,
        apikey: str,
        *,
        node_prefix: str = "enerbox",
        batch_size: int = 250,
        timeout_s: float = 10,
        on_event: EventCallback | None = None,
    ) -> None:
        super().__init__(spool, batch_size=batch_size, on_event=on_event)
        if urllib.parse.urlsplit(url).scheme not in {"http", "https"}:
            raise ValueError(f"emoncms url must be http(s)://..., not {url!r}")
        self.endpoint = url.rstrip("/") + "/input/bulk.json"
        # emoncms answers /describe with the plain word "emoncms" (emonhub's discovery): cheap.
        self._probe_url = url.rstrip("/") + "/describe"
        self.node_prefix = node_prefix
        self.timeout_s = timeout_s
        self._apikey = apikey

    def items(self, points: list[Point]) -> list[str]:
        """Spool items for these points, with this sink's node prefix."""
        return emoncms_items(points, self.node_prefix)

    def _probe(self) -> bool:
        return http_answers(self._probe_url, self.probe_timeout_s)

    def _send(self, items: list[str]) -> None:
        form = {"apikey": self._apikey, "data": "[" + ",".join(items) + "]",
                "sentat": str(int(time.time()))}
        request = urllib.request.Request(  # noqa: S310 (scheme checked in __init__)
            self.endpoint, data=urllib.parse.urlencode(form).encode("ascii"), method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
                text = response.read(65536).decode("utf-8", "replace").strip()
        except urllib.error.HTTPError as exc:  # 401 bad apikey, 5xx...: the server's problem
            raise SinkDownError(f"HTTP {exc.code} {exc.reason}") from exc
        except OSError as exc:  # URLError (refused, DNS), timeouts, resets
            raise SinkDownError(f"{type(exc).__name__}: {exc}") from exc
        _verdict(text)


def _verdict(text: str) -> None:
    """Accept "ok" or {"success": true}; BadDataError on a format error; else SinkDownError."""
    if text == "ok":
        return
    try:
        answer: Any = json.loads(text)
    except ValueError:
        answer = None
    if isinstance(answer, dict):
        if answer.get("success") is True:
            return
        text = str(answer.get("message", text))
    # input_methods.php's documented refusals of the data start with "Format error" (older
    # versions answer the bare string, newer wrap it in {"success": false, "message": ...}).
    # Anything else ("Error: ..." input limits, a login page) is retried: the data is fine.
    if "Format error" in text:
        raise BadDataError(f"emoncms: {text[:300]}")
    raise SinkDownError(f"emoncms answered {text[:200]!r}")

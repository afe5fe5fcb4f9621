"""InfluxDB v2 sink: line-protocol lines from a spool, written with the synchronous WriteApi.

Exactly-once, and the one window left: a line leaves the spool only after the server
answered 2xx (204), so an outage, a refused connection or a timeout keeps it queued. The only
way to write a line twice is a crash (or a response lost on the wire) after the server stored
the batch and before the ack commit; the next run sends that one batch again. That is
acceptable because the second write is a no-op on the servers we target:
- InfluxDB keys a point by measurement + tag set + timestamp; writing the same point again
  overwrites it with the same values, so no second point appears.
- VictoriaMetrics (checked on v1.79.5, the Debian package) stores line protocol at millisecond
  precision and, WITHOUT -dedup.minScrapeInterval, keeps identical samples at the same
  timestamp as separate raw samples: /api/v1/export returns both and count_over_time counts
  both. With -dedup.minScrapeInterval=1ms it keeps one sample per series and millisecond,
  at query time (even for data written before the flag was set) and when merging parts.
  So run VictoriaMetrics with -dedup.minScrapeInterval=1ms behind this sink.

Fewer, larger requests (``write_interval_s``): after a batch that did not fill ``batch_size``
the sink waits that long before the next one; the points wait in the spool, which is on disk
and committed before the broker's acks go out, so a crash meanwhile loses nothing (the wait
changes when a line is sent, never when it is acked). A full batch (a backlog) goes at once.
"""

from __future__ import annotations

from typing import cast

import urllib3
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from services.historian.drain import (
    BadDataError,
    EventCallback,
    SinkDownError,
    SpoolDrain,
    http_answers,
)
from services.historian.spool import Spool

# Refusals about the data itself: 400 (unparsable line, partial write), 413 (too large: halving
# the batch fixes it) and 422 (unprocessable, e.g. outside retention). Every other status
# (401/403 token, 404 bucket, 429, 5xx) is about the server or its setup: retry, keep the data.
_BAD_DATA = frozenset({400, 413, 422})
# The client annotates write_precision as WritePrecision but its constants are plain str.
_NS = cast(WritePrecision, WritePrecision.NS)


class InfluxSink(SpoolDrain):
    """Drains a spool of line-protocol lines into an InfluxDB v2 (or VictoriaMetrics) bucket."""

    name = "influxdb"

    def __init__(
        self,
        spool: Spool,
        url: str,
        token: str | None,
        org: str,
        bucket: str,
        *,
        batch_size: int = 5000,
        timeout_s: float = 10,
        write_interval_s: float = 0,
        on_event: EventCallback | None = None,
    ) -> None:
        super().__init__(spool, batch_size=batch_size, on_event=on_event)
        self.org = org
        self.bucket = bucket
        self.write_interval_s = write_interval_s
        self.requests = 0  # write requests sent (tests count them)
        # InfluxDB v2 and VictoriaMetrics both answer GET /ping with a 204, without a token.
        self._ping_url = url.rstrip("/") + "/ping"
        # No client-side retries (the drain loop owns retrying, with its backoff and events).
        self._client = InfluxDBClient(
            url=url, token=token or "", org=org, timeout=round(timeout_s * 1000)
        )
        self._write = self._client.write_api(write_options=SYNCHRONOUS)

    def _deliver(self, batch: list[tuple[int, str]]) -> None:
        super()._deliver(batch)
        if self.write_interval_s > 0 and len(batch) < self.batch_size:
            # stop() and flush() set the nudge: they cut the wait short.
            self._nudge.wait(self.write_interval_s)

    def _send(self, items: list[str]) -> None:
        self.requests += 1
        try:
            self._write.write(
                bucket=self.bucket, org=self.org, record=items, write_precision=_NS
            )
        except ApiException as exc:
            body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else exc.body
            message = f"HTTP {exc.status}: {str(body or exc.reason)[:300]}"
            if exc.status in _BAD_DATA:
                raise BadDataError(message) from exc
            raise SinkDownError(message) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:  # refused, reset, timeout
            raise SinkDownError(f"{type(exc).__name__}: {exc}") from exc

    def _probe(self) -> bool:
        return http_answers(self._ping_url, self.probe_timeout_s)

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop the thread, then close the HTTP client (a stopped sink is not restarted)."""
        super().stop(timeout_s)
        self._write.close()  # type: ignore[no-untyped-call]  # (the client's close is unannotated)
        self._client.close()  # type: ignore[no-untyped-call]

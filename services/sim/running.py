"""What every simulator's `main` does around its work: wait for SIGINT/SIGTERM without a
handler, and follow the relays over MQTT when asked (`--follow HOST:PORT`)."""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

from services.sim.follow import RelayFollower, relay_powers

log = logging.getLogger(__name__)
STOPS = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def stop_signals() -> Iterator[Callable[[], None]]:
    """Block SIGINT/SIGTERM for the block (threads started inside inherit the mask), so no
    handler runs inside some Event.wait; yields the wait that returns when one arrives."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)

    def wait() -> None:
        signo = signal.sigwait(STOPS)
        log.info("signal %s: stopping", signal.Signals(signo).name)

    try:
        yield wait
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def start_follower(follow: str | None, prefix: str, config: Path | None
                   ) -> RelayFollower | None:
    """The relay follower `--follow HOST:PORT` asks for, started (None without it)."""
    if not follow:
        return None
    host, _, port = follow.rpartition(":")
    return RelayFollower(host, int(port), prefix=prefix, powers=relay_powers(config)).start()

"""api service: FastAPI under uvicorn, in a thread of its own with its own event loop."""

from __future__ import annotations

import errno
import logging
import socket
import threading
from pathlib import Path

import uvicorn

from services.api.app import create_app
from services.api.config import ApiInputs
from services.api.live import Live
from services.api.security import load_token
from services.core.bus import Bus
from services.core.config import Settings
from services.core.service import Service

log = logging.getLogger(__name__)


class ApiService(Service[ApiInputs]):
    """REST, WebSocket and web page on port 8080 (by default)."""

    name = "api"
    announces = False  # no HA discovery

    def __init__(self, config: Settings[ApiInputs], bus: Bus) -> None:
        super().__init__(config, bus)
        cfg = config.section.api
        secret = cfg.token.get_secret_value() if cfg.token else None
        token = load_token(secret, Path(config.general.data_dir))
        self.live = Live(stale_after_s=cfg.stale_after_s)
        self.live.attach(bus)
        app = create_app(config, bus, self.live, token)
        self.server = uvicorn.Server(uvicorn.Config(
            app, host=cfg.host, port=cfg.port, log_level="warning", access_log=False,
            ws="websockets-sansio", lifespan="on", timeout_graceful_shutdown=2,
            # Clients only listen on /api/ws: a bigger message closes it (1009) instead of
            # sitting in memory (uvicorn holds one per connection, 16 MB by default).
            ws_max_size=4096,
        ))
        self.host, self.port = cfg.host, cfg.port
        self.thread: threading.Thread | None = None
        self.url = f"http://{cfg.host}:{cfg.port}"

    def start(self) -> None:
        """Bind the port here, so a taken port fails the start; then serve in a thread
        (uvicorn installs no signal handlers outside the main thread)."""
        sock = listen(self.host, self.port)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]},
                                       name="api", daemon=True)
        self.thread.start()
        log.info("service=api listening on %s", self.url)

    def healthy(self) -> bool:
        """uvicorn's thread serves (it ends only when stopped, or on a crash)."""
        return self.thread is None or self.thread.is_alive() or self.server.should_exit

    def stop(self) -> None:
        """Close connections and stop serving."""
        if self.thread is None:
            return
        self.server.should_exit = True
        self.thread.join(timeout=4)
        if self.thread.is_alive():  # a client holding a connection open: don't wait on it
            self.server.force_exit = True
            self.thread.join(timeout=2)


class PortInUseError(OSError):
    """The API's port is taken by another program."""


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or PortInUseError saying which."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(exc.errno, f"port {port} on {host} is already in use "
                                 "(another program, or another enerbox api)") from None
        raise
    return sock

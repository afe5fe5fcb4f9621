"""HTTP/1.1 by hand, for what httpx will not send: a huge chunked body, a lying header."""

from __future__ import annotations

import json
import select
import socket
from dataclasses import dataclass
from typing import Any


@dataclass
class Answer:
    """What the server said, and how much of the body it let us send."""

    status: int
    headers: dict[str, str]
    body: bytes
    sent: int

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


def post_chunked(port: int, path: str, total: int, chunk: int = 65536,
                 headers: dict[str, str] | None = None) -> Answer:
    """POST ``total`` bytes in chunks; stop sending as soon as the server answers or closes."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 f"Transfer-Encoding: chunked\r\n{extra}\r\n".encode())
    block = f"{chunk:x}\r\n".encode() + b" " * chunk + b"\r\n"
    sent = 0
    try:
        while sent < total:
            if select.select([sock], [], [], 0)[0]:  # an answer already: stop sending
                break
            sock.sendall(block)
            sent += chunk
        else:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    return _read_answer(sock, sent)


def send_head(port: int, head: str) -> Answer:
    """Send a request head only (no body) and read the answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(head.encode())
    return _read_answer(sock, 0)


def _read_answer(sock: socket.socket, sent: int) -> Answer:
    data = b""
    with sock:
        try:
            while b"\r\n\r\n" not in data or not _complete(data):
                more = sock.recv(65536)
                if not more:
                    break
                data += more
        except ConnectionResetError:
            pass
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines and lines[0].startswith("HTTP/1.1 "), f"no HTTP answer: {data[:200]!r}"
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    headers = {k.lower(): v for k, v in headers.items()}
    return Answer(int(lines[0].split()[1]), headers, body, sent)


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.decode("latin-1").split("\r\n"):
        if line.lower().startswith("content-length:"):
            return len(body) >= int(line.split(":")[1])
    return False

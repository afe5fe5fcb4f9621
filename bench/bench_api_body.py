"""API: resident memory under a 200 MB chunked POST (no token), against a real uvicorn.

The body limit (api.max_body_bytes, 16 kB) must hold for streamed bodies: the figure is
the api process's RSS growth while one client pushes 200 MB with Transfer-Encoding:
chunked. Aim: under +5 MB (it was +755 MB before the limit counted streamed bytes).
"""

from __future__ import annotations

import select
import socket
import time

from bench.net import api_stack
from bench.rss import rss_kib

MB = 1024 * 1024


def post_chunked(port: int, total: int, chunk: int = 65536) -> tuple[str, int, float]:
    """(status line, bytes the server let us send, seconds) for a chunked POST of ``total``."""
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(b"POST /api/relays/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nTransfer-Encoding: chunked\r\n\r\n")
        block = f"{chunk:x}\r\n".encode() + b" " * chunk + b"\r\n"
        sent = 0
        try:
            while sent < total and not select.select([sock], [], [], 0)[0]:
                sock.sendall(block)
                sent += chunk
            if sent >= total:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            answer = sock.recv(4096)
        except ConnectionResetError:
            answer = b"(reset)"
    return answer.split(b"\r\n", 1)[0].decode("latin-1"), sent, time.perf_counter() - start


def main() -> None:
    """Print the RSS growth of the api under a 200 MB chunked body."""
    print("API body limit (200 MB chunked POST, no token, real uvicorn):")
    with api_stack() as stack:
        before, _ = rss_kib(stack.api_pid)
        status, sent, seconds = post_chunked(stack.api_port, 200 * MB)
        after, _ = rss_kib(stack.api_pid)
        print(f"  {(after - before) / 1024:+.1f} MB RSS  ({before / 1024:.1f} -> "
              f"{after / 1024:.1f} MB); answer '{status}' after {sent / MB:.1f} MB sent, "
              f"{seconds * 1000:.0f} ms")


if __name__ == "__main__":
    main()

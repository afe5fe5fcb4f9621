"""The WebSocket only sends: a client's big message is refused, not held in memory.

uvicorn keeps one whole incoming message per connection until the app reads it (ours
never does), up to ws_max_size: 16 MB by default, times every open connection.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import websockets

from tests.api.alone import run_api
from tests.conftest import Broker


def test_big_websocket_message_closes_the_connection(broker: Broker, prefix: str,
                                                     tmp_path: Path) -> None:
    async def push(port: int) -> int | None:
        async with websockets.connect(f"ws://127.0.0.1:{port}/api/ws", max_size=None) as ws:
            await ws.recv()  # the snapshot
            await ws.send(b"x" * 1024 * 1024)
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            return ws.close_code

    with run_api(tmp_path, broker, prefix, {"token": "t0ken-t0ken"}) as api:
        assert asyncio.run(push(api.port)) == 1009  # message too big
        assert api.proc.poll() is None

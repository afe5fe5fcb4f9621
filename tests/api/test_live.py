"""Back-pressure: a WebSocket client that does not read is dropped, the others go on."""

from __future__ import annotations

import asyncio

from services.api.live import CLIENT_QUEUE, Live


def test_slow_client_is_dropped_fast_one_keeps_everything() -> None:
    async def run() -> tuple[list[object], int]:
        live = Live()
        live.loop = asyncio.get_running_loop()
        slow, fast = live.subscribe(), live.subscribe()
        received: list[object] = []

        async def reader() -> None:
            while (message := await fast.get()) is not None:
                received.append(message)
                if len(received) == CLIENT_QUEUE * 2:
                    return

        task = asyncio.create_task(reader())
        for i in range(CLIENT_QUEUE * 2):
            live.publish({"type": "state", "n": i})
            await asyncio.sleep(0)  # let the loop run the hand-over and the fast reader
        await asyncio.wait_for(task, 5)
        assert slow not in live.clients and fast in live.clients
        return received, slow.qsize()

    received, left = asyncio.run(run())
    assert len(received) == CLIENT_QUEUE * 2  # the fast client lost nothing
    assert left == 1  # the slow one holds only the None that tells it it was dropped

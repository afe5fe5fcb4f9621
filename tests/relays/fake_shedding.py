"""A stand-in for the shedding service, run as a subprocess so a test can kill -9 it: the real
Bus (status online, last will offline, heartbeat), and a retained "not shed" flag for each
relay named, which puts those relays under shedding.

``python -m tests.relays.fake_shedding HOST PORT PREFIX HEARTBEAT_S RELAY...``
"""

from __future__ import annotations

import sys
import threading

from services.core.bus import Bus
from services.core.config import MqttConfig
from services.core.contract import ShedFlag


def main(argv: list[str]) -> int:
    host, port, prefix, interval = argv[0], int(argv[1]), argv[2], float(argv[3])
    bus = Bus(MqttConfig(host=host, port=port, prefix=prefix), "shedding")
    bus.start()
    if not bus.wait_connected(10):
        return 1
    for relay in argv[4:]:
        bus.publish_retained(bus.topics.relay_shed(relay),
                             ShedFlag(False, "not shed").encode())
    bus.start_heartbeat(interval, lambda: True)
    print("fake shedding running", flush=True)
    threading.Event().wait()  # until killed
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""The MQTT contract of enerbox, in one place (DESIGN.md, 'MQTT contract').

Every topic is built and parsed here (``topics``); every payload services exchange has a
frozen type with ``decode(bytes) -> Message | Rejection`` and ``encode() -> bytes``
(``messages``), and every inbound payload goes through ``payload.decode_json`` with a size
and a depth limit before any JSON parser sees it. No service spells a topic or parses a
payload on its own.
"""

from services.core.contract.messages import (
    AutomationSwitch,
    AutoWish,
    CommandReply,
    DeviceState,
    Event,
    EventKind,
    MeterState,
    Presence,
    PulseCalibration,
    RelayCommand,
    RelayReport,
    ShedFlag,
)
from services.core.contract.orders import ON_ORDERS, ORDERS, Order, is_on
from services.core.contract.payload import MAX_DEPTH, MAX_PAYLOAD_BYTES, Rejection, decode_json
from services.core.contract.topics import Topic, TopicKind, Topics, check_prefix, slug

__all__ = [
    "MAX_DEPTH",
    "MAX_PAYLOAD_BYTES",
    "ON_ORDERS",
    "ORDERS",
    "AutoWish",
    "AutomationSwitch",
    "CommandReply",
    "DeviceState",
    "Event",
    "EventKind",
    "MeterState",
    "Order",
    "Presence",
    "PulseCalibration",
    "Rejection",
    "RelayCommand",
    "RelayReport",
    "ShedFlag",
    "Topic",
    "TopicKind",
    "Topics",
    "check_prefix",
    "decode_json",
    "is_on",
    "slug",
]

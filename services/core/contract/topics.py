"""Every topic of DESIGN.md's table, built and parsed here and nowhere else."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

_NOT_SLUG = re.compile(r"[^a-z0-9_-]+")


def slug(text: str) -> str:
    """A topic-safe id: lower-case ASCII letters, digits, '-' and '_' only.

    'Chauffe-eau Salle/Bain #2' -> 'chauffe-eau-salle-bain-2'. Raises ValueError when
    nothing usable is left, so a bad id fails at start rather than making a bad topic.
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    result = _NOT_SLUG.sub("-", ascii_text.lower()).strip("-")
    result = re.sub(r"-{2,}", "-", result)
    if not result:
        raise ValueError(f"{text!r} has no letter or digit to make an id from")
    return result


def check_prefix(prefix: str) -> str:
    """Validate a topic prefix such as 'enerbox' or 'enerbox/site-42'."""
    for level in prefix.split("/"):
        if not level or _NOT_SLUG.sub("", level) != level or level.strip("-") != level:
            raise ValueError(
                f"{prefix!r}: each level must be a non-empty slug (a-z, 0-9, '-', '_'), "
                f"got {level!r}"
            )
    return prefix


def _check(level: str, what: str) -> str:
    if level != slug(level):
        raise ValueError(f"{what} {level!r} is not a slug")
    return level


class TopicKind(StrEnum):
    """What a topic carries (the leaf of DESIGN.md's table)."""

    STATUS = "status"
    EVENTS = "events"
    HEARTBEAT = "heartbeat"
    REPLIES = "replies"
    AVAILABILITY = "availability"
    STATE = "state"
    JOURNAL = "journal"
    RAW = "raw"
    DIAGNOSTICS = "diagnostics"
    FIELD = "field"
    RELAY_SET = "set"
    RELAY_SHED = "shed"
    RELAY_AUTO = "auto"
    # <p>/automation/<relay>/set: the load's "automation enabled" switch (its leaf is "set";
    # the kind has its own name, an enum value cannot be RELAY_SET's twice).
    AUTOMATION_SET = "automation_set"
    # <p>/pulses/<meter>/set: the meter's index read on its display (calibration).
    PULSES_SET = "pulses_set"


_SERVICE_LEAVES = {TopicKind.STATUS, TopicKind.EVENTS, TopicKind.HEARTBEAT, TopicKind.REPLIES}
_DEVICE_LEAVES = {
    TopicKind.AVAILABILITY, TopicKind.STATE, TopicKind.JOURNAL, TopicKind.RAW,
    TopicKind.DIAGNOSTICS,
}
_RELAY_INPUTS = {TopicKind.RELAY_SET, TopicKind.RELAY_SHED, TopicKind.RELAY_AUTO}
_SET_LEAF = "set"
# Services other than relays whose devices take a command on their "set" leaf.
_SET_KINDS = {"automation": TopicKind.AUTOMATION_SET, "pulses": TopicKind.PULSES_SET}


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed topic: its kind, service, device (or relay) and field name where it has one."""

    kind: TopicKind
    service: str
    device: str | None = None
    field: str | None = None


class Topics:
    """Topic names under one prefix; ``service`` is the service that owns this instance."""

    def __init__(self, prefix: str, service: str) -> None:
        self.prefix = check_prefix(prefix)
        self.service = slug(service)
        self.base = f"{self.prefix}/{self.service}"

    # -- the owning service's own topics ---------------------------------------------------

    @property
    def status(self) -> str:
        """Retained online/offline of this service (its last will)."""
        return self.status_of(self.service)

    @property
    def events(self) -> str:
        """Non-retained JSON events of this service."""
        return self.events_of(self.service)

    @property
    def heartbeat(self) -> str:
        """Liveness of this service: a message every few seconds while its workers run."""
        return self.heartbeat_of(self.service)

    @property
    def replies(self) -> str:
        """Where answers to this service's requests come back (MQTT v5 response topic)."""
        return f"{self.base}/{TopicKind.REPLIES}"

    def device(self, device: str, leaf: str) -> str:
        """A device topic of this service: availability, state, raw, diagnostics, a field."""
        return self.device_of(self.service, device, leaf)

    def availability(self, device: str) -> str:
        """Retained online/offline of one of this service's devices."""
        return self.device(device, TopicKind.AVAILABILITY)

    def state(self, device: str) -> str:
        """Retained JSON state of one of this service's devices."""
        return self.device(device, TopicKind.STATE)

    def journal_of_state(self, state_topic: str) -> str:
        """The journal twin of a state topic: every state once, non-retained, QoS 1, without
        message expiry, for the historian (the retained state expires; this must not)."""
        parsed = self.parse(state_topic)
        if parsed is None or parsed.kind != TopicKind.STATE or parsed.device is None:
            raise ValueError(f"{state_topic!r} is not a state topic")
        return self.device_of(parsed.service, parsed.device, TopicKind.JOURNAL)

    def field(self, device: str, name: str) -> str:
        """Retained plain scalar of one normalized field."""
        return self.device(device, name)

    def raw(self, device: str) -> str:
        """Non-retained protocol labels as read."""
        return self.device(device, TopicKind.RAW)

    def diagnostics(self, device: str) -> str:
        """Retained JSON counters of a device."""
        return self.device(device, TopicKind.DIAGNOSTICS)

    # -- any service's topics ------------------------------------------------------------

    def status_of(self, service: str) -> str:
        """Another service's status."""
        return f"{self.prefix}/{_check(service, 'service')}/{TopicKind.STATUS}"

    def events_of(self, service: str) -> str:
        """Another service's events."""
        return f"{self.prefix}/{_check(service, 'service')}/{TopicKind.EVENTS}"

    def heartbeat_of(self, service: str) -> str:
        """Another service's heartbeat."""
        return f"{self.prefix}/{_check(service, 'service')}/{TopicKind.HEARTBEAT}"

    def device_of(self, service: str, device: str, leaf: str) -> str:
        """A device topic of any service."""
        return (f"{self.prefix}/{_check(service, 'service')}/{_check(device, 'device id')}/"
                f"{_check(leaf, 'topic level')}")

    def state_of(self, service: str, device: str) -> str:
        """A device's state, e.g. ``state_of('teleinfo', 'linky')``."""
        return self.device_of(service, device, TopicKind.STATE)

    def availability_of(self, service: str, device: str) -> str:
        """A device's availability."""
        return self.device_of(service, device, TopicKind.AVAILABILITY)

    def relay_set(self, relay: str) -> str:
        """Commands to a relay (users, the api, HA, the display)."""
        return self.device_of("relays", relay, TopicKind.RELAY_SET)

    def relay_shed(self, relay: str) -> str:
        """The shedding service's retained decision for a relay."""
        return self.device_of("relays", relay, TopicKind.RELAY_SHED)

    def relay_auto(self, relay: str) -> str:
        """The automation's retained wish for a relay."""
        return self.device_of("relays", relay, TopicKind.RELAY_AUTO)

    def relay_state(self, relay: str) -> str:
        """A relay's state."""
        return self.state_of("relays", relay)

    def automation_state(self, relay: str) -> str:
        """The automation's state for one relay it drives."""
        return self.state_of("automation", relay)

    def automation_set(self, relay: str) -> str:
        """The "automation enabled" switch of one load (HA, the api, Node-RED)."""
        return self.device_of("automation", relay, _SET_LEAF)

    def pulses_set(self, meter: str) -> str:
        """The calibration command of one pulse meter (its index, read on its display)."""
        return self.device_of("pulses", meter, _SET_LEAF)

    @property
    def any_automation_set(self) -> str:
        """``<p>/automation/+/set``: every load's switch."""
        return f"{self.prefix}/automation/+/{_SET_LEAF}"

    # -- subscription filters -------------------------------------------------------------

    @property
    def everything(self) -> str:
        """``<p>/#``: every topic of the box."""
        return f"{self.prefix}/#"

    def any_service(self, kind: TopicKind) -> str:
        """``<p>/+/status``, ``<p>/+/events``, ``<p>/+/heartbeat``."""
        if kind not in _SERVICE_LEAVES:
            raise ValueError(f"{kind} is not a service-level topic")
        return f"{self.prefix}/+/{kind}"

    def any_device(self, kind: TopicKind, service: str | None = None) -> str:
        """``<p>/+/+/state`` (or one service's devices: ``<p>/teleinfo/+/state``)."""
        if kind not in _DEVICE_LEAVES:
            raise ValueError(f"{kind} is not a device-level topic")
        level = "+" if service is None else _check(service, "service")
        return f"{self.prefix}/{level}/+/{kind}"

    def any_relay(self, kind: TopicKind) -> str:
        """``<p>/relays/+/set``, ``.../shed``, ``.../auto``."""
        if kind not in _RELAY_INPUTS:
            raise ValueError(f"{kind} is not a relay input topic")
        return f"{self.prefix}/relays/+/{kind}"

    # -- parsing --------------------------------------------------------------------------

    def parse(self, topic: str) -> Topic | None:
        """What a topic under this prefix is, or None for anything else."""
        head = self.prefix + "/"
        if not topic.startswith(head):
            return None
        levels = topic[len(head):].split("/")
        if not all(levels) or any(lv != _NOT_SLUG.sub("", lv) for lv in levels):
            return None
        if len(levels) == 2:
            service, leaf = levels
            for kind in _SERVICE_LEAVES:
                if leaf == kind.value:
                    return Topic(kind, service)
            return None
        if len(levels) != 3:
            return None
        service, device, leaf = levels
        if leaf == _SET_LEAF and service in _SET_KINDS:
            return Topic(_SET_KINDS[service], service, device)
        if service == "relays":
            for kind in _RELAY_INPUTS:
                if leaf == kind.value:
                    return Topic(kind, service, device)
        for kind in _DEVICE_LEAVES:
            if leaf == kind.value:
                return Topic(kind, service, device)
        return Topic(TopicKind.FIELD, service, device, leaf)


def discovery_topic(discovery_prefix: str, object_id: str) -> str:
    """Home Assistant device-based discovery topic."""
    return f"{discovery_prefix}/device/{slug(object_id)}/config"


def ha_status_topic(discovery_prefix: str) -> str:
    """Home Assistant's birth/last-will topic (discovery is re-sent when it says online)."""
    return f"{discovery_prefix}/status"

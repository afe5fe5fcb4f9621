"""MQTT topic names of the enerbox contract, and the slugs that go into them."""

from __future__ import annotations

import re
import unicodedata

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
    levels = prefix.split("/")
    for level in levels:
        if not level or not _NOT_SLUG.sub("", level) == level or level.strip("-") != level:
            raise ValueError(
                f"{prefix!r}: each level must be a non-empty slug (a-z, 0-9, '-', '_'), "
                f"got {level!r}"
            )
    return prefix


class Topics:
    """Topic names for one service under a prefix (see DESIGN.md, 'MQTT contract')."""

    def __init__(self, prefix: str, service: str) -> None:
        self.prefix = check_prefix(prefix)
        self.service = slug(service)
        self.base = f"{self.prefix}/{self.service}"

    @property
    def status(self) -> str:
        """Retained online/offline of the service itself (its last will)."""
        return f"{self.base}/status"

    @property
    def events(self) -> str:
        """Non-retained JSON events of the service."""
        return f"{self.base}/events"

    def device(self, device: str, leaf: str) -> str:
        """A device topic: availability, state, raw, diagnostics or a field name."""
        if device != slug(device):
            raise ValueError(f"device id {device!r} is not a slug")
        if leaf != slug(leaf):
            raise ValueError(f"topic level {leaf!r} is not a slug")
        return f"{self.base}/{device}/{leaf}"

    def availability(self, device: str) -> str:
        """Retained online/offline of a device."""
        return self.device(device, "availability")

    def state(self, device: str) -> str:
        """Retained JSON state of a device."""
        return self.device(device, "state")


def discovery_topic(discovery_prefix: str, object_id: str) -> str:
    """Home Assistant device-based discovery topic."""
    return f"{discovery_prefix}/device/{slug(object_id)}/config"

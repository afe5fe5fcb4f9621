"""One gate for every inbound payload: size, encoding and depth are checked before any JSON
parser runs, so no message (``[`` x 100,000, 200 MB, invalid UTF-8, NaN) can raise past it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

MAX_PAYLOAD_BYTES = 64 * 1024  # a teleinfo state is ~1.5 kB; HA discovery (not parsed) ~20 kB
MAX_DEPTH = 8  # the deepest message of the contract nests 3 levels
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a payload was refused; ``excerpt`` is safe to log and to publish in an event."""

    reason: str
    excerpt: str = ""

    @classmethod
    def of(cls, reason: str, payload: bytes | str) -> Rejection:
        """A rejection quoting at most 80 characters of the payload."""
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
        return cls(reason, text[:80])


def json_depth(text: str) -> int:
    """Deepest nesting of arrays and objects, ignoring brackets inside strings (linear)."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def decode_text(payload: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> str | Rejection:
    """The payload as UTF-8 text, stripped, or why not."""
    if len(payload) > max_bytes:
        return Rejection(f"payload of {len(payload)} bytes is over the {max_bytes}-byte limit")
    try:
        return payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        return Rejection.of("payload is not UTF-8 text", payload)


def decode_json(
    payload: bytes, max_bytes: int = MAX_PAYLOAD_BYTES, max_depth: int = MAX_DEPTH
) -> Any | Rejection:
    """Parse JSON within the limits: a value, or a Rejection saying what was wrong."""
    text = decode_text(payload, max_bytes)
    if isinstance(text, Rejection):
        return text
    if not text:
        return Rejection("empty payload")
    depth = json_depth(text)
    if depth > max_depth:
        return Rejection.of(f"JSON nested {depth} levels deep (limit {max_depth})", text)
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        return Rejection.of(f"not valid JSON ({msg})", text)


def decode_object(
    payload: bytes, what: str, max_bytes: int = MAX_PAYLOAD_BYTES
) -> dict[str, Any] | Rejection:
    """A JSON object (the shape of every structured message of the contract)."""
    data = decode_json(payload, max_bytes)
    if isinstance(data, Rejection):
        return data
    if not isinstance(data, dict):
        return Rejection.of(f"{what} must be a JSON object", payload)
    return data

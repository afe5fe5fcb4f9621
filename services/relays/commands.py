"""Relay commands as this service takes them: the contract's ``RelayCommand`` (parsed and
bounded in services.core.contract) checked against the relay it is for, and the
``CommandReply`` that answers a command sent with a response topic."""

from __future__ import annotations

from datetime import UTC, datetime

from services.core.contract import CommandReply, Rejection, RelayCommand


def decode_for(payload: bytes, kind: str) -> RelayCommand | Rejection:
    """The command in ``payload`` if it suits a relay of ``kind`` (an order is for a zone)."""
    command = RelayCommand.decode(payload)
    if isinstance(command, Rejection):
        return command
    return command.check_kind(kind) or command


def reply(relay: str, result: RelayCommand | Rejection, applied: bool,
          until: float | None = None) -> CommandReply:
    """The answer: accepted with what was recorded (``applied`` False while the load is held
    in its safe state: applied when restored; ``until`` the end of the forced mode, epoch s),
    or refused with the reason."""
    if isinstance(result, Rejection):
        return CommandReply(relay, accepted=False, reason=result.reason)
    return CommandReply(relay, accepted=True, applied=applied, mode=result.mode,
                        order=result.order, for_s=result.for_s,
                        until=None if until is None else datetime.fromtimestamp(until, UTC))

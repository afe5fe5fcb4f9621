"""Fil pilote: six orders for French radiators, on two outputs (one opto-triac per half-wave)."""

from __future__ import annotations

from services.core.contract.orders import Order
from services.relays.drivers.base import OutputBoard

# GIFAM 6-order radiators: Confort-1/-2 are full-wave pulses of ~3 s / ~7 s every 5 minutes.
PERIOD_S = 300.0
PULSE_1_S = 3.0
PULSE_2_S = 7.0


# The orders are the contract's (services.core.contract.orders); the first four are patterns
# on the wire, Confort-1/-2 are timed. Remora mapping, (a, b) output levels: no signal =
# Confort, full wave = Éco, negative half-wave = Hors-gel, positive half-wave = Arrêt.
PATTERNS: dict[Order, tuple[bool, bool]] = {
    Order.CONFORT: (False, False),
    Order.ECO: (True, True),
    Order.HORS_GEL: (True, False),
    Order.ARRET: (False, True),
}
_BY_PATTERN = {pattern: order for order, pattern in PATTERNS.items()}


class FilPiloteZone:
    """One radiator zone on two board channels; the service calls ``tick`` to time pulses."""

    def __init__(
        self,
        board: OutputBoard,
        channel_a: int,
        channel_b: int,
        invert: bool = False,
        *,
        period_s: float = PERIOD_S,
        pulse_1_s: float = PULSE_1_S,
        pulse_2_s: float = PULSE_2_S,
    ) -> None:
        self.board = board
        self.channels = (channel_a, channel_b)
        # Some board revisions wire the optos the other way round: flip both outputs.
        self.invert = invert
        self.period_s = period_s
        self.pulses = {Order.CONFORT_1: pulse_1_s, Order.CONFORT_2: pulse_2_s}
        self.order: Order | None = None
        self._since = 0.0
        self._on_wire: Order | None = None

    def apply(self, order: Order, now: float) -> None:
        """Drive the pattern for ``order`` now; raises BoardError.

        Re-applying the current order re-asserts the outputs but keeps the pulse timing, so a
        periodic re-assert does not add pulses; a new order starts its timing at ``now``.
        """
        if order != self.order:
            self.order, self._since = order, now
        self._write(self.expected(now))

    def assume(self, order: Order, now: float) -> None:
        """Take ``order`` as applied at ``now`` without writing: the board came up with its
        pattern already (preset levels)."""
        self.order, self._since = order, now
        self._on_wire = self.expected(now)

    def expected(self, now: float) -> Order:
        """The base order that should be on the wire at ``now`` (Confort before any apply)."""
        if self.order is None:
            return Order.CONFORT
        pulse_s = self.pulses.get(self.order)
        if pulse_s is None:
            return self.order
        # The pulse opens each period, so the radiator hears the order as soon as it is set.
        in_period = (now - self._since) % self.period_s
        return Order.ECO if in_period < pulse_s else Order.CONFORT

    def tick(self, now: float) -> bool:
        """Switch between Confort and the Éco pulse when due; True when the outputs changed."""
        if self.order not in self.pulses:
            return False
        want = self.expected(now)
        if want == self._on_wire:
            return False
        self._write(want)
        return True

    def levels(self, order: Order) -> dict[int, bool]:
        """Pin levels of ``order`` (a timed order: its opening pulse, Éco), no I/O: also what
        a board is preset with before it is configured."""
        a, b = PATTERNS.get(order, PATTERNS[Order.ECO])
        return {self.channels[0]: a != self.invert, self.channels[1]: b != self.invert}

    def read(self) -> Order:
        """The base order the two outputs encode, read back from the board; raises BoardError."""
        a, b = (self.board.get(ch) != self.invert for ch in self.channels)
        return _BY_PATTERN[(a, b)]

    def _write(self, base: Order) -> None:
        # Both outputs in one write (one port of an expander): from hors-gel (1, 0) to arret
        # (0, 1), two writes would put confort or eco on the wire in between.
        self.board.set_many(self.levels(base))
        self._on_wire = base

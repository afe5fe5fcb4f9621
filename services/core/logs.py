"""Logging setup: one line per state change, key=value context, to stderr (journald/docker)."""

from __future__ import annotations

import logging
import sys


def setup_logging(level: str = "INFO") -> None:
    """Configure the root logger once; quiet chatty libraries."""
    root = logging.getLogger()
    if not any(getattr(h, "_enerbox", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        )
        handler._enerbox = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("paho").setLevel(logging.WARNING)

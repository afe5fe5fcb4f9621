"""`python -m services.relays`: run the relays service."""

from services.core.service import run

raise SystemExit(run(["relays"]))

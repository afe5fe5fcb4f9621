"""`python -m services.relays`: run the relays service."""

from services.app.runner import run

raise SystemExit(run(["relays"]))

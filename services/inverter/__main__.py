"""`python -m services.inverter`: run the inverter service."""

from services.app.runner import run

raise SystemExit(run(["inverter"]))

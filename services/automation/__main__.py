"""`python -m services.automation`: run the automation service."""

from services.app.runner import run

raise SystemExit(run(["automation"]))

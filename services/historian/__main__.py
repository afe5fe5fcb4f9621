"""`python -m services.historian`: run the historian service."""

from services.app.runner import run

raise SystemExit(run(["historian"]))

"""`python -m services.temperature`: run the temperature service."""

from services.app.runner import run

raise SystemExit(run(["temperature"]))

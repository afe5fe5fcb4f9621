"""`python -m services.api`: run the api service."""

from services.app.runner import run

raise SystemExit(run(["api"]))

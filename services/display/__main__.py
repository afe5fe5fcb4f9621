"""`python -m services.display`: run the display service."""

from services.app.runner import run

raise SystemExit(run(["display"]))

"""``python -m services.app ...``: same as ``enerbox ...``."""

from services.app.cli import main

raise SystemExit(main())

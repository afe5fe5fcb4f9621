"""``python -m services.sim tic ...``: same as ``enerbox sim tic ...``."""

from services.sim.cli import main

raise SystemExit(main())

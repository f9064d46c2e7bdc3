"""``python -m poelis_scan``."""

from .cli import main

raise SystemExit(main())

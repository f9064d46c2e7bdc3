"""``python -m poelis_scan``: the same entry point as the ``poelis-scan`` script."""

from .entry import main

raise SystemExit(main())

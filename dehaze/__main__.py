"""``python -m dehaze``: the ``dehaze`` command."""

from __future__ import annotations

import sys

from dehaze.cli import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

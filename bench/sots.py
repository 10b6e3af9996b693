"""SOTS / O-HAZE benchmark runner: a thin script over ``dehaze.benchmark.main``.

Same as ``dehaze bench``; see ``python bench/sots.py --help``. Example::

    python bench/sots.py --limit 5 --output bench-results-quick
"""

from __future__ import annotations

import sys

from dehaze.benchmark import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

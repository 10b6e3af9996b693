"""``python -m dehaze``: the ``dehaze`` command."""

from __future__ import annotations

from dehaze.cli import run

if __name__ == "__main__":  # pragma: no cover
    run()

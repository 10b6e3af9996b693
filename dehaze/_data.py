"""Where the shared evaluation data lives: ``$DEHAZE_DATA``, else ``../shared/data``."""

from __future__ import annotations

import os
from pathlib import Path

#: Fallback location, relative to the working directory (the project root in development).
DEFAULT_DATA_DIR = Path("..") / "shared" / "data"


def data_root() -> Path:
    """Return the evaluation-data folder: ``$DEHAZE_DATA`` if set, else ``../shared/data``.

    The folder is not required to exist; callers check and report.
    """
    value = os.environ.get("DEHAZE_DATA")
    return Path(value) if value else DEFAULT_DATA_DIR

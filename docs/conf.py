"""Sphinx configuration of the dehaze documentation.

Build (warnings are errors, as in CI)::

    .venv/bin/python -m sphinx -W --keep-going -b html docs docs/_build/html

The guide's figures and the CLI reference's help text are generated at the start of each
build by ``make_figures.py`` into ``docs/_generated/`` (not committed).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # the package, when it is not installed

import dehaze  # noqa: E402

project = "dehaze"
author = "dehaze developers"
copyright = "dehaze developers"  # noqa: A001
release = dehaze.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_generated"]
templates_path: list[str] = []

autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"  # the numpydoc docstrings state the types
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()
myst_heading_anchors = 3
# numpydoc "References" entries are not always cited in the text ([1]_); that is fine
suppress_warnings = ["ref.citation"]

html_theme = "alabaster"
html_static_path: list[str] = []
html_title = f"dehaze {release}"


def _generate(app: object) -> None:
    import make_figures

    make_figures.main(HERE / "_generated")


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("builder-inited", _generate)

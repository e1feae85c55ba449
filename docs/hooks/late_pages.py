"""mkdocs hook: a guide that its own issue is still writing builds as a one-line page until it lands.

``mkdocs build --strict`` fails on a nav entry or a link whose file is missing. The guides below
are written by other work; until one's file exists, the build (never the repository) gets a page
that says so, so the site builds and the links stay checked. Any other missing page still fails.
"""

from __future__ import annotations

import logging
from typing import Any

from mkdocs.structure.files import File, Files

LATE_PAGES = {"serving.md": "Serving", "scaling.md": "Scaling out", "fuzzing.md": "Fuzzing"}
log = logging.getLogger("mkdocs.hooks.late_pages")


def on_files(files: Files, config: Any) -> Files:
    for name, title in LATE_PAGES.items():
        if files.get_file_from_path(name) is None:
            log.info("%s is not written yet; building a placeholder page", name)
            content = f"# {title}\n\nThis guide is not written yet.\n"
            files.append(File.generated(config, name, content=content))
    return files

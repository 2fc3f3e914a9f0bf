"""A movie's result folder, made whole or not at all: written in a hidden folder beside it, the marker
(``complete.json``, holding the summary row) written last, then renamed into place. A folder without the
marker (a job killed mid-write, a movie that failed half-way) is never taken for a result, and is redone."""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path

MARKER = "complete.json"
PARTIAL_PREFIX = ".partial-"
STALE_PREFIX = ".stale-"


def completed_row(folder: Path) -> dict | None:
    """The summary row a finished movie's marker holds, or None when the folder is not a whole result."""
    try:
        row = json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return row if isinstance(row, dict) else None


def partial_folder(out: Path, name: str) -> Path:
    """A new hidden folder beside ``out/name`` to write the result into."""
    folder = Path(out) / f"{PARTIAL_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    return folder


def write_marker(folder: Path, row: dict) -> None:
    """The marker, atomically: a reader finds it whole or not at all."""
    tmp = Path(folder) / f".{MARKER}.tmp"
    tmp.write_text(json.dumps(row, indent=1))
    os.replace(tmp, Path(folder) / MARKER)


def publish(partial: Path, final: Path) -> None:
    """Put ``partial`` in the place of ``final`` (an older, incomplete folder there is removed first)."""
    final = Path(final)
    if final.exists():
        stale = final.parent / f"{STALE_PREFIX}{final.name}-{uuid.uuid4().hex[:8]}"
        os.replace(final, stale)
        shutil.rmtree(stale, ignore_errors=True)
    os.replace(partial, final)


def remove_leftovers(out: Path, name: str) -> None:
    """Partial folders of ``name`` left by a job that was killed: never results, so removed."""
    pattern = re.compile(f"({re.escape(PARTIAL_PREFIX)}|{re.escape(STALE_PREFIX)}){re.escape(name)}-[0-9a-f]{{8}}")
    for folder in Path(out).iterdir():
        if folder.is_dir() and pattern.fullmatch(folder.name):
            shutil.rmtree(folder, ignore_errors=True)

"""A batch's summary: one row per movie (movie, frames, objects, divisions, seconds, status, reason), as a
table to print and a CSV to keep."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

COLUMNS = ("movie", "frames", "objects", "divisions", "seconds", "status", "reason")
SUMMARY_FILE = "summary.csv"


@dataclass
class BatchSummary:
    """What happened to every movie of a batch, in the order they were listed; ``csv_path`` is where the
    CSV was written."""

    rows: list[dict]
    csv_path: Path | None = None
    seconds: float = 0.0
    where: str = ""
    counts: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.counts = {s: sum(r["status"] == s for r in self.rows) for s in ("done", "skipped", "failed")}

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.rows if r["status"] == "failed"]

    def row(self, movie: str) -> dict:
        return next(r for r in self.rows if r["movie"] == movie)

    def table(self) -> str:
        """The rows as an aligned text table, with a closing line of counts."""
        cells = [[_cell(r.get(c)) for c in COLUMNS] for r in self.rows]
        widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(COLUMNS)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths)).rstrip()]
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
        counts = ", ".join(f"{n} {s}" for s, n in self.counts.items())
        lines.append(f"{len(self.rows)} movies: {counts} in {self.seconds:.1f} s")
        return "\n".join(lines)

    def write_csv(self, path: Path) -> Path:
        """The rows as CSV, written whole or not at all."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows({c: ("" if r.get(c) is None else r.get(c)) for c in COLUMNS} for r in self.rows)
        os.replace(tmp, path)
        self.csv_path = path
        return path


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    text = str(value)
    return text if len(text) <= 90 else text[:87] + "..."

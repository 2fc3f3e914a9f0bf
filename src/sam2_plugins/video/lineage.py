"""Lineage: which object divided into which, kept in one place for every export.

A division on frame ``f`` ends its mother on frame ``f - 1`` and starts two daughters on ``f``.
A parent link may also come without a division frame (a prompts file's ``"parents"``, or a
label image's lineage): the exports then resolve it by the frames the objects are present on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class Division:
    frame: int  # the daughters' first frame; the mother's last is frame - 1
    mother: int
    daughters: tuple[int, ...]


class Lineage:
    """Daughter -> mother links, and the frame of each division. No object has two mothers, no
    object is its own ancestor."""

    def __init__(self) -> None:
        self._mother: dict[int, int] = {}  # daughter -> mother
        self._division_frame: dict[int, int] = {}  # mother -> the daughters' first frame

    # ------------------------------------------------------------ read
    @property
    def parents(self) -> dict[int, int]:
        """{daughter id: mother id}, as the exports take it."""
        return dict(self._mother)

    def graph(self) -> dict[int, list[int]]:
        """napari's Tracks graph: {daughter id: [mother id]}."""
        return {d: [m] for d, m in self._mother.items()}

    def divisions(self) -> list[Division]:
        kids: dict[int, list[int]] = {}
        for d, m in self._mother.items():
            kids.setdefault(m, []).append(d)
        return [Division(f, m, tuple(sorted(kids.get(m, [])))) for m, f in sorted(self._division_frame.items())]

    def division_frame(self, mother: int) -> int | None:
        return self._division_frame.get(mother)

    def __len__(self) -> int:
        return len(self._mother)

    # ------------------------------------------------------------ change
    def check_division(self, frame: int, mother: int, daughters: tuple[int, ...]) -> None:
        """Raise ValueError if this division cannot be recorded (nothing changes)."""
        if mother in self._division_frame:
            raise ValueError(f"object {mother} already divided on frame {self._division_frame[mother]}")
        if len(set(daughters)) != len(daughters) or mother in daughters:
            raise ValueError(f"daughters {daughters} must be distinct new objects, not the mother {mother}")
        for d in daughters:
            self._check_link(d, mother)

    def add_division(self, frame: int, mother: int, daughters: tuple[int, ...]) -> Division:
        self.check_division(frame, mother, daughters)
        for d in daughters:
            self._mother[d] = mother
        self._division_frame[mother] = frame
        return Division(frame, mother, tuple(daughters))

    def set_parent(self, daughter: int, mother: int) -> None:
        """A parent link without a division frame."""
        self._check_link(daughter, mother)
        self._mother[daughter] = mother

    def _check_link(self, daughter: int, mother: int) -> None:
        if daughter == mother:
            raise ValueError(f"object {daughter} cannot be its own mother")
        if daughter in self._mother and self._mother[daughter] != mother:
            raise ValueError(f"object {daughter} already has mother {self._mother[daughter]}")
        ancestor = mother
        while ancestor in self._mother:
            ancestor = self._mother[ancestor]
            if ancestor == daughter:
                raise ValueError(f"object {daughter} would be an ancestor of its own mother {mother}")

    def forget(self, obj_id: int) -> None:
        """Drop every link of a removed object (its daughters keep no mother)."""
        self._mother.pop(obj_id, None)
        self._division_frame.pop(obj_id, None)
        for d in [d for d, m in self._mother.items() if m == obj_id]:
            del self._mother[d]

    def clear(self) -> None:
        self._mother.clear()
        self._division_frame.clear()

    # ------------------------------------------------------------ records
    def to_dict(self) -> dict[str, Any]:
        return {"parents": {str(d): m for d, m in sorted(self._mother.items())},
                "division_frames": {str(m): f for m, f in sorted(self._division_frame.items())}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "Lineage":
        lineage = cls()
        data = data or {}
        for d, m in data.get("parents", {}).items():
            lineage.set_parent(int(d), int(m))
        lineage._division_frame = {int(m): int(f) for m, f in data.get("division_frames", {}).items()}
        return lineage

"""The two passes of ``propagate_all`` and how far they got, so an interrupted run can go on.

A full propagation tracks forward from the earliest conditioning frame to the last frame, then
backward from it to frame 0. Each tracked frame advances the record; a run that stops (cancel,
Ctrl-C, an error) keeps it, and so does its session file, so a resumed run tracks exactly the
frames that were left, reading the same memories an uninterrupted run would have read.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PassProgress:
    """How far the last full propagation got."""

    first: int  # the earliest conditioning frame, where both passes start
    forward_next: int  # next frame of the forward pass (the video's length once done)
    backward_next: int  # next frame of the backward pass (-1 once done)

    @classmethod
    def start(cls, first: int) -> "PassProgress":
        return cls(first, first, first if first > 0 else -1)

    def passes(self, num_frames: int) -> list[tuple[list[int], bool]]:
        """The frames left, as (frames in order, reverse?) per pass."""
        return [(list(range(self.forward_next, num_frames)), False), (list(range(self.backward_next, -1, -1)), True)]

    def advance(self, frame: int, reverse: bool) -> None:
        """``frame`` is done."""
        if reverse:
            self.backward_next = frame - 1
        else:
            self.forward_next = frame + 1

    def memories_to_keep(self, num_frames: int, reach: int) -> set[int]:
        """Tracked frames whose memories the passes left will read (``reach``: how far back SAM 2 reads)."""
        frames = set()
        if self.forward_next < num_frames:
            frames |= set(range(self.forward_next - reach, self.forward_next))
        if self.backward_next >= 0:  # also the forward frames next to ``first`` that the backward pass reads
            frames |= set(range(self.backward_next + 1, self.backward_next + reach + 1))
        return frames

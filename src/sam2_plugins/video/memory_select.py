"""SAM 2's rule for which earlier frames condition an object on a frame.

One function serves tracking and training, so the two can never read different memories:

* conditioning (prompted) frames: all of them, or the ``max_cond_frames_in_attn`` nearest
  (the nearest before and the nearest at or after the frame come first);
* ``num_maskmem - 1`` tracked frames before the frame (after it, in reverse), the nearest one
  and then every ``stride``-th frame: ``memory_temporal_stride_for_eval`` in inference, 1 in
  training, as SAM 2 trains;
* object pointers of the chosen conditioning frames (only those in the past in inference, when
  ``only_obj_ptrs_in_the_past_for_eval``) and of up to ``max_obj_ptrs_in_encoder - 1`` frames
  before the frame.

The rule names frames; the caller reads its stored outputs of those frames.
"""

from __future__ import annotations

from collections.abc import Collection, Container
from dataclasses import dataclass

from ..config import Sam2Config


@dataclass(frozen=True)
class MemoryPick:
    """The frames that condition one object on one frame, in the order their tokens are stacked."""

    spatial: tuple[tuple[int, int, bool], ...]  # (t_pos, frame, is a conditioning frame); t_pos 0: prompted
    pointers: tuple[tuple[int, int, bool], ...]  # (temporal distance as encoded, frame, is a conditioning frame)
    max_ptrs: int  # the pointer window, which scales the pointers' temporal code


def closest_cond_frames(frame: int, cond_frames: Collection[int], max_num: int) -> tuple[list[int], set[int]]:
    """Up to ``max_num`` conditioning frames nearest to ``frame`` (all when -1), and the others."""
    if max_num == -1 or len(cond_frames) <= max_num:
        return list(cond_frames), set()
    before = max((t for t in cond_frames if t < frame), default=None)
    after = min((t for t in cond_frames if t >= frame), default=None)
    chosen = [t for t in (before, after) if t is not None]
    rest = sorted((t for t in cond_frames if t not in chosen), key=lambda t: abs(t - frame))
    chosen += rest[: max_num - len(chosen)]
    return chosen, {t for t in cond_frames if t not in chosen}


def pick_memories(
    cfg: Sam2Config,
    frame: int,
    cond_frames: Collection[int],
    tracked_frames: Container[int],
    num_frames: int,
    *,
    reverse: bool = False,
    training: bool = False,
) -> MemoryPick:
    """The memories SAM 2 reads for one object on ``frame``.

    ``cond_frames``: the object's conditioning frames, in the order they were made;
    ``tracked_frames``: frames whose tracked (unprompted) output is stored; ``num_frames``: the
    video's length (pointers never reach past it).
    """
    selected, unselected = closest_cond_frames(frame, cond_frames, cfg.max_cond_frames_in_attn)
    spatial = [(0, t, True) for t in selected]
    stride = 1 if training else cfg.memory_temporal_stride_for_eval
    for t_pos in range(1, cfg.num_maskmem):
        t_rel = cfg.num_maskmem - t_pos  # frames before the current one (after it, in reverse)
        if t_rel == 1:
            prev = frame + 1 if reverse else frame - 1
        elif reverse:
            prev = -(-(frame + 2) // stride) * stride + (t_rel - 2) * stride
        else:
            prev = ((frame - 2) // stride) * stride - (t_rel - 2) * stride
        if prev in tracked_frames:
            spatial.append((t_pos, prev, False))
        elif prev in unselected:
            spatial.append((t_pos, prev, True))
    pointers: list[tuple[int, int, bool]] = []
    max_ptrs = min(num_frames, cfg.max_obj_ptrs_in_encoder)
    if cfg.use_obj_ptrs_in_encoder:
        sign = -1 if reverse else 1
        past_only = cfg.only_obj_ptrs_in_the_past_for_eval and not training
        for t in selected:
            if past_only and (t < frame if reverse else t > frame):
                continue
            dist = (frame - t) * sign if cfg.use_signed_tpos_enc_to_obj_ptrs else abs(frame - t)
            pointers.append((dist, t, True))
        for t_diff in range(1, max_ptrs):
            t = frame + t_diff if reverse else frame - t_diff
            if t < 0 or t >= num_frames:
                break
            if t in tracked_frames:
                pointers.append((t_diff, t, False))
            elif t in unselected:
                pointers.append((t_diff, t, True))
    return MemoryPick(tuple(spatial), tuple(pointers), max_ptrs)


def memory_reach(cfg: Sam2Config) -> int:
    """How many frames back (forward, in reverse) SAM 2 may read a tracked frame's memory or pointer."""
    return max(cfg.num_maskmem * cfg.memory_temporal_stride_for_eval, cfg.max_obj_ptrs_in_encoder) + 1

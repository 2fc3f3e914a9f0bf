"""Cell tracking on top of a video session: seeding, divisions, and cells that appear.

* :func:`add_label_image` seeds one object per label of a label image (a Cellpose, StarDist or
  hand-drawn segmentation of a frame);
* :func:`add_automatic_masks` seeds the objects that automatic masks find on a frame;
* :func:`divide` records a division: the mother ends the frame before, two daughters start;
* :class:`CellEvents` watches a forward propagation and makes those edits itself: a track that
  splits into two separate parts of a plausible size for ``split_frames`` frames divides, and
  every ``new_cells_every`` frames automatic masks that no track covers become new tracks.

Everything here goes through the session's public methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage as ndi

from ..automask import AutoMaskSettings, generate_masks, masks_to_labels
from ..prompts import MAX_OBJECT_ID, validate_mask, validate_points
from .results import FrameResult

if TYPE_CHECKING:
    from ..sources import FrameSource
    from .session import VideoSession


def next_free_ids(session: "VideoSession", count: int) -> list[int]:
    """``count`` object ids above every id the session has used (objects and lineage)."""
    used = set(session.object_ids) | set(session.lineage.parents) | set(session.lineage.parents.values())
    start = max(used, default=0) + 1
    if start + count - 1 > MAX_OBJECT_ID:
        raise ValueError(f"no room for {count} more objects: ids go up to {MAX_OBJECT_ID}")
    return list(range(start, start + count))


def frame_image(source: "FrameSource", frame: int) -> np.ndarray:
    """The frame as the model sees it: (H, W, 3) uint8 of the source's intensity normalisation."""
    return (np.clip(source.read(frame), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# ---------------------------------------------------------------- seeding
def add_label_image(session: "VideoSession", frame: int, labels: Any, *, starts_here: bool = False) -> list[int]:
    """Each label of ``labels`` ((H, W) integers, 0 = background) becomes that object's mask prompt
    on ``frame``. Returns the ids. Every check comes before any change."""
    frame = session.check_frame(frame)
    labels = np.asarray(labels)
    if labels.shape != (session.height, session.width):
        raise ValueError(f"label image has shape {labels.shape} but the frames are "
                         f"{session.height}x{session.width} (height x width)")
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise ValueError(f"a label image holds integers (0 = background), got dtype {labels.dtype}")
    ids = [int(i) for i in np.unique(labels) if i != 0]
    bad = [i for i in ids if not 1 <= i <= MAX_OBJECT_ID]
    if bad:
        raise ValueError(f"label image holds ids {bad[:5]} outside 1..{MAX_OBJECT_ID}")
    taken = sorted(set(ids) & set(session.object_ids))
    if taken:
        raise ValueError(f"label image ids {taken[:5]} are objects of the session already")
    added = []
    try:
        for i in ids:
            session.add_mask(frame, i, labels == i, starts_here=starts_here)
            added.append(i)
    except Exception:
        for i in added:
            session.remove_object(i)
        raise
    return ids


def add_automatic_masks(session: "VideoSession", frame: int, settings: AutoMaskSettings | None = None,
                        *, starts_here: bool = False) -> list[int]:
    """Seed every object that automatic masks find on ``frame``, with new ids. Returns them."""
    masks = generate_masks(session.model, frame_image(session.source, frame), settings or AutoMaskSettings.for_cells())
    labels = masks_to_labels(masks, (session.height, session.width))
    ids = next_free_ids(session, int(labels.max()))
    relabel = np.zeros(int(labels.max()) + 1, np.int64)
    relabel[1:] = ids
    return add_label_image(session, frame, relabel[labels], starts_here=starts_here)


# ---------------------------------------------------------------- divisions
def divide(session: "VideoSession", frame: int, obj_id: int, *, masks=None, points=None,
           daughter_ids=None) -> tuple[int, int]:
    """``obj_id`` divides on ``frame``: it ends on ``frame - 1``, and two daughters start on
    ``frame``, each prompted with its mask (``masks=[a, b]``, (H, W) each) or its clicks
    (``points=[[(x, y), ...], [...]]``). Returns the daughters' ids. Every check comes first: on
    an error the session is unchanged."""
    frame = session.check_frame(frame)
    mother = session.check_object(obj_id)
    if (masks is None) == (points is None):
        raise ValueError("give the two daughters as masks=[a, b] or as points=[[(x, y), ...], [(x, y), ...]]")
    given = list(masks if masks is not None else points)
    if len(given) != 2:
        raise ValueError(f"a division has two daughters, got {len(given)}")
    size = (session.height, session.width)
    present = [f for f in (frame, frame - 1) if f >= 0 and session.results.score(f, mother) is not None
               and session.results.score(f, mother) > 0]
    if not present:
        raise ValueError(f"object {mother} is absent on frame {frame}: divide it on a frame where it has a mask")
    if masks is not None:
        shapes = [validate_mask(m, size) for m in given]
        empty = [k for k, m in enumerate(shapes) if not m.any()]
        if empty:
            raise ValueError(f"daughter mask {empty[0] + 1} is empty")
        overlap = int((shapes[0] & shapes[1]).sum())
        if overlap:
            raise ValueError(f"the daughters overlap on {overlap} pixels: give each its own pixels")
    else:
        shapes = []
        for clicks in given:
            coords, _ = validate_points(clicks, [1] * len(clicks), size)
            if coords is None:
                raise ValueError("each daughter needs at least one click")
            shapes.append(coords)
    ids = tuple(daughter_ids) if daughter_ids is not None else tuple(next_free_ids(session, 2))
    if len(ids) != 2:
        raise ValueError(f"a division has two daughters, got ids {ids}")
    taken = [i for i in ids if i in session.object_ids]
    if taken:
        raise ValueError(f"daughter ids {taken} are objects of the session already")
    session.lineage.check_division(frame, mother, ids)
    session.check_end(mother, frame)
    added: list[int] = []
    try:
        for i, shape in zip(ids, shapes):
            if masks is not None:
                session.add_mask(frame, i, shape, starts_here=True)
            else:
                session.add_points(frame, i, shape, [1] * len(shape), starts_here=True)
            added.append(i)
    except Exception:
        for i in added:
            session.remove_object(i)
        raise
    session.end_object(mother, frame)
    session.lineage.add_division(frame, mother, ids)
    return ids


# ---------------------------------------------------------------- automatic events
@dataclass
class CellOptions:
    """What :class:`CellEvents` does during a forward propagation."""

    divisions: bool = True
    split_frames: int = 2  # a split must hold this many frames in a row to be a division
    min_part_fraction: float = 0.2  # each part at least this share of the track's recent area
    min_part_area: int = 12  # and at least this many pixels
    max_daughter_iou: float = 0.4  # clicks in two cells give masks overlapping less than this
    max_part_fraction: float = 0.8  # no daughter is nearly the whole mother
    min_mother_fraction: float = 0.5  # tracks below this share of the typical cell's area do not divide
    min_cycle_frames: int = 10  # a daughter does not divide again sooner than this (a cell cycle is longer)
    drop_fraction: float = 0.7  # a track shrinking below this share of its recent area triggers a search
    new_cells_every: int | None = None  # frames between searches for cells no track covers (None: never)
    new_cell_min_iou: float = 0.3  # an automatic mask matching a track this well is that track, not new
    automask: AutoMaskSettings = field(default_factory=AutoMaskSettings.for_cells)

    def __post_init__(self) -> None:
        if self.split_frames < 1:
            raise ValueError(f"split_frames must be at least 1, got {self.split_frames}")
        if not 0 < self.min_part_fraction < 0.5:
            raise ValueError(f"min_part_fraction must lie in (0, 0.5), got {self.min_part_fraction}")
        if self.new_cells_every is not None and self.new_cells_every < 1:
            raise ValueError(f"new_cells_every must be at least 1 or None, got {self.new_cells_every}")


def _two_seeds(mask: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """Two click positions (x, y) in the two widest places of a mask that lie apart: the interior
    point farthest from the border, and the farthest-from-border point outside its disc."""
    dist = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y1, x1 = np.unravel_index(int(np.argmax(dist)), dist.shape)
    r = dist[y1, x1]
    yy, xx = np.indices(mask.shape)
    outside = (yy - y1) ** 2 + (xx - x1) ** 2 > (1.5 * r) ** 2
    rest = np.where(outside, dist, 0)
    y2, x2 = np.unravel_index(int(np.argmax(rest)), rest.shape)
    if rest[y2, x2] < 0.5 * r:
        return None
    return (float(x1), float(y1)), (float(x2), float(y2))


def split_in_two(session: "VideoSession", frame: int, mask: np.ndarray, recent_area: float,
                 opts: "CellOptions", embedding=None) -> list[np.ndarray] | None:
    """The two cells that a tracked mask holds, when it holds two: separate parts, or two cells
    the model tells apart (a click in each of the mask's two widest places gives two masks that
    barely overlap, each of a daughter's size, together covering most of the mask).
    ``embedding()`` gives the frame's :meth:`VideoSession.frame_embedding` (default: made here)."""
    floor = max(opts.min_part_area, opts.min_part_fraction * recent_area)
    parts, n = ndi.label(mask, structure=np.ones((3, 3), bool))
    if n >= 2:
        sizes = np.bincount(parts.ravel())[1:]
        order = np.argsort(sizes)[::-1][:2]
        if sizes[order[1]] >= floor:
            return [parts == k + 1 for k in order]
    seeds = _two_seeds(mask)
    if seeds is None:
        return None
    emb = embedding() if embedding is not None else session.frame_embedding(frame)
    la, lb = (session.model.predict_image(emb, points=[p], labels=[1]).logits[0] for p in seeds)
    a, b = la > 0, lb > 0
    union = a | b
    if (a & b).sum() > opts.max_daughter_iou * union.sum() or (union & mask).sum() < 0.6 * mask.sum():
        return None  # one cell (both clicks give it), or masks that miss the track
    a, b = mask & a & (la >= lb), mask & b & (lb > la)  # shared pixels go to the more certain mask
    if min(a.sum(), b.sum()) < floor or max(a.sum(), b.sum()) > 3 * min(a.sum(), b.sum()):
        return None
    if max(a.sum(), b.sum()) > opts.max_part_fraction * max(recent_area, mask.sum()):
        return None  # one part is the whole cell: a neighbour let go of, not a daughter
    return [a, b]


class CellEvents:
    """Called after each frame of a forward propagation (``propagate_all(events=...)``): records
    divisions and new cells through the session, and returns the frame to go on from when it
    changed something (None otherwise)."""

    def __init__(self, session: "VideoSession", options: CellOptions | None = None) -> None:
        self.session = session
        self.options = options or CellOptions()
        self._areas: dict[int, list[int]] = {}  # object -> its areas on the last frames
        self._splits: dict[int, tuple[int, list[np.ndarray]]] = {}  # object -> (first split frame, parts)
        self._last_search = -1

    def __call__(self, result: FrameResult) -> int | None:
        session, opts = self.session, self.options
        frame = result.frame_index
        restart: int | None = None
        made: list = []

        def embedding():  # made once a frame, for every track that needs it
            if not made:
                made.append(session.frame_embedding(frame))
            return made[0]

        shrank = False
        if opts.divisions:
            areas = (result.logits > 0).sum(axis=(1, 2))
            typical = float(np.median(areas[areas > 0])) if (areas > 0).any() else 0.0
            for k, oid in enumerate(result.object_ids):
                if oid not in session.tracks:
                    continue
                mask = result.logits[k] > 0
                area = int(mask.sum())
                history = self._areas.setdefault(oid, [])
                recent = float(np.median(history)) if history else float(area)
                big_enough = area and recent >= opts.min_mother_fraction * typical and not self._just_born(oid, frame)
                parts = split_in_two(session, frame, mask, recent, opts, embedding) if big_enough else None
                if parts is None and history and area < opts.drop_fraction * recent:
                    shrank = True  # it may follow one daughter now: look for the other at once
                if parts is None:
                    self._splits.pop(oid, None)
                    history.append(area)
                    del history[:-5]
                    continue
                first, first_parts = self._splits.setdefault(oid, (frame, parts))
                if frame - first + 1 >= opts.split_frames:
                    self._splits.pop(oid)
                    if self._taken_over(oid, first, first_parts):
                        continue
                    try:
                        divide(session, first, oid, masks=first_parts)
                    except ValueError:
                        continue  # e.g. prompts later on the mother: leave it to the user
                    restart = first + 1 if restart is None else min(restart, first + 1)
        every = opts.new_cells_every
        due = every is not None and (frame - self._last_search >= every or (shrank and frame > self._last_search))
        if due and restart is None:
            self._last_search = frame
            restart = self._new_cells(frame)
        return restart

    def _just_born(self, oid: int, frame: int) -> bool:
        """A daughter younger than a cell cycle: a split of it is two cells it spills over, not a division."""
        track = self.session.tracks[oid]
        return (oid in self.session.lineage.parents and track.first_frame is not None
                and frame - track.first_frame < self.options.min_cycle_frames)

    def _taken_over(self, oid: int, first: int, parts: list[np.ndarray], look_back: int = 3) -> bool:
        """Whether a part of a split is another track's cell: on one of the frames before the split
        it lay mostly inside one other object's mask. A track that grew over a neighbour and lets go
        of it looks like a division; a daughter lies inside its own mother before it separates."""
        frames = list(range(max(0, first - look_back), first))
        if not frames:
            return False
        before = self.session.labels(frames)  # (k, H, W)
        for part in parts:
            area = int(part.sum())
            for labels in before:
                ids, counts = np.unique(labels[part], return_counts=True)
                if any(i not in (0, oid) and c > 0.5 * area for i, c in zip(ids.tolist(), counts.tolist())):
                    return True
        return False

    def _new_cells(self, frame: int) -> int | None:
        """Cells no track covers become tracks: a daughter when it lies against a track of its size
        (a division whose other daughter the track followed), else a cell that appeared."""
        session, opts = self.session, self.options
        found = generate_masks(session.model, frame_image(session.source, frame), opts.automask)
        tracked = session.labels([frame])[0]
        changed = False
        for cell in found:
            mask = cell.mask
            if mask.sum() < opts.min_part_area or self._explained(mask, tracked):
                continue
            mother = self._mother_of(frame, mask, tracked) if opts.divisions else None
            try:
                if mother is not None:
                    divide(session, frame, mother, masks=[(tracked == mother) & ~mask, mask & (tracked != mother)])
                else:
                    (new_id,) = next_free_ids(session, 1)
                    session.add_mask(frame, new_id, mask, starts_here=True)
            except ValueError:
                continue
            tracked = session.labels([frame])[0]
            changed = True
        return frame + 1 if changed else None

    def _explained(self, cell: np.ndarray, tracked: np.ndarray) -> bool:
        """Whether a track already is this cell (their masks match), rather than a track that only
        spills over it."""
        ids, counts = np.unique(tracked[cell], return_counts=True)
        area = int(cell.sum())
        for i, shared in zip(ids, counts):
            if i and shared / (area + int((tracked == i).sum()) - shared) >= self.options.new_cell_min_iou:
                return True
        return False

    def _mother_of(self, frame: int, cell: np.ndarray, tracked: np.ndarray) -> int | None:
        """The track a new cell divided from: of the tracks it lies against (longest shared border
        first), the first of a sister's size (within 2.5x) that neither covers the cell nor was born
        just now; none for a cell at the image's edge (it entered the field)."""
        if cell[0].any() or cell[-1].any() or cell[:, 0].any() or cell[:, -1].any():
            return None
        area = int(cell.sum())
        ring = ndi.binary_dilation(cell, iterations=2) & ~cell
        ids, counts = np.unique(tracked[ring], return_counts=True)
        for i in ids[np.argsort(counts)[::-1]]:
            track = self.session.tracks.get(int(i))
            if not i or track is None:
                continue
            own = tracked == i
            newborn = track.first_frame is not None and frame - track.first_frame < 3
            spills = (own & cell).sum() > 0.5 * area
            if not newborn and not spills and 0.4 <= area / max(int((own & ~cell).sum()), 1) <= 2.5:
                return int(i)
        return None

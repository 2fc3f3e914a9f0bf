"""Click-and-track evaluation on held-out synthetic videos, through the real video session.

    python recipes/evaluate.py --model micro-synthetic --cells 8 --scenes 8

Protocol
--------
* Cells: a 30-frame ``make_timelapse`` movie (256 x 256, 8 cells, fluorescence and phase
  alternating with the seed). Every cell visible on frame 0 gets ONE positive click at its
  interior point (the maximum of its distance transform) as its own object; the session then
  propagates through the movie. J is the mean IoU over every (frame, cell) pair in which the
  GT cell exists (the prompted frame included; its J alone is reported too, to tell
  segmentation from tracking). Divisions: a clicked mother is scored against
  the mother while the mother exists; frames after its track ends are not scored (the GT
  daughters are new tracks nobody clicked).
* Identity switches: on each frame the prediction of a clicked cell is matched to the GT cell
  it overlaps with IoU >= 0.5 (if any). A switch is counted whenever that matched id changes
  from one frame to a later one, except a change from a mother to one of her descendants, and
  a change between two cells of the clicked cell's own lineage (the clicked cell and its
  descendants: after a division both daughters continue the clicked cell, so a mask that
  covers both and matches one, then the other, has not left the cell it was given).
  Reported per 100 clicked tracks.
* Cells are scored twice: on each clicked object's own mask (SAM 2's output, masks may overlap),
  and on the label image the session exports (``VideoSession.labels``: each pixel to the most
  confident object, as in ``labels.tif``, the CTC export and the napari labels layer), which
  is what a microscopist keeps.
* Scenes: a 24-frame ``make_scene_video`` (192 x 256, 3 occluding objects); one click per
  object visible on frame 0; J over frames where the object is visible.
* ``--non-overlap`` tracks with the session's ``non_overlap_memory`` rule on (SAM 2's
  ``non_overlap_masks_for_mem_enc``), ``--overlap`` with it off; by default the model config
  decides (on for micro-synthetic, off for Meta's checkpoints).
* ``--bf16-agreement N``: how far the fast bfloat16 path (on ``--device``) strays from float32
  on the CPU (the same clicks, per-track Jaccard of the two mask stacks) on N scene and N cell
  videos of 12 frames, seeds ``--seed + 120`` on.
* ``--device cuda`` evaluates on a GPU (bfloat16 there by default).

Held-out seeds start at 10_000_000 (training uses the 1_000_000 and 2_000_000 ranges).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from sam2_plugins import Sam2Model, load_model
from sam2_plugins.engine import Sam2
from sam2_plugins.sample import interior_point
from sam2_plugins.synthetic import make_scene_video, make_timelapse

EVAL_SEED_BASE = 10_000_000


@dataclass
class TrackScore:
    ious: list[float] = field(default_factory=list)
    switches: int = 0


def _descendants(lineage: dict[int, int], root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for child, parent in lineage.items():
        if parent:
            children.setdefault(parent, []).append(child)
    out, todo = set(), [root]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


@dataclass
class TrackedVideo:
    """Per clicked object: its own (T, H, W) bool masks, and its pixels in the exported label image."""
    masks: dict[int, np.ndarray]
    label_masks: dict[int, np.ndarray]


def as_sam2(model: Sam2 | Sam2Model) -> Sam2:
    """A loaded model as it is; a bare network (just trained, say) wrapped to track in float32."""
    return Sam2(model) if isinstance(model, Sam2Model) else model


def track_clicks(model: Sam2 | Sam2Model, frames: np.ndarray, labels: np.ndarray, *, min_pixels: int = 10,
                 non_overlap: bool | None = None) -> TrackedVideo:
    """Click every object of frame 0 once at its interior point, propagate through the video."""
    model = as_sam2(model)
    ids = [int(i) for i, c in zip(*np.unique(labels[0], return_counts=True)) if i and c >= min_pixels]
    masks = {i: np.zeros(labels.shape, bool) for i in ids}
    if not ids:
        return TrackedVideo(masks, {i: m.copy() for i, m in masks.items()})
    with model.open_video(frames, non_overlap_memory=non_overlap) as session:
        for i in ids:
            x, y = interior_point(labels[0] == i)
            session.add_points(0, obj_id=i, points=[[x, y]], labels=[1])
        for res in session.propagate():
            for k, oid in enumerate(res.object_ids):
                masks[oid][res.frame_index] = res.logits[k] > 0
        exported = session.labels(dtype=np.int32)  # (T, H, W)
    return TrackedVideo(masks, {i: exported == i for i in ids})


def track_video(model, frames: np.ndarray, labels: np.ndarray, *, min_pixels: int = 10,
                non_overlap: bool | None = None) -> dict[int, np.ndarray]:
    """Click every object of frame 0 once, propagate, return obj_id -> (T, H, W) bool masks."""
    return track_clicks(model, frames, labels, min_pixels=min_pixels, non_overlap=non_overlap).masks


def score_tracks(masks: dict[int, np.ndarray], labels: np.ndarray, lineage: dict[int, int] | None = None
                 ) -> dict[int, TrackScore]:
    """Per clicked object: IoU on frames where its GT exists, and identity switches."""
    out: dict[int, TrackScore] = {}
    known: dict[int, set[int]] = {}  # id -> its descendants, each worked out once

    def descendants(i: int) -> set[int]:
        if i not in known:
            known[i] = _descendants(lineage, i) if lineage else set()
        return known[i]

    def keeps_identity(last: int, match: int, family: set[int]) -> bool:
        # within the clicked cell's lineage, or from any cell to one of its own descendants
        return (last in family and match in family) or match in descendants(last)

    for oid, pred in masks.items():
        score = TrackScore()
        family = {oid} | descendants(oid)  # the clicked cell's lineage
        last = None
        for t in range(labels.shape[0]):
            gt = labels[t] == oid
            p = pred[t]
            if gt.any():
                score.ious.append(jaccard(gt, p))
            if not p.any():
                continue
            ids, inter = np.unique(labels[t][p], return_counts=True)
            sizes = np.bincount(labels[t].ravel(), minlength=int(ids.max()) + 1)[ids]
            ious = inter / (p.sum() + sizes - inter)
            ious[ids == 0] = 0
            k = int(np.argmax(ious))
            if ious[k] < 0.5:
                continue
            match = int(ids[k])
            if last is not None and match != last and not keeps_identity(last, match, family):
                score.switches += 1
            last = match
        out[oid] = score
    return out


def evaluate_cells(model, seeds, *, num_frames: int = 30, non_overlap: bool | None = None,
                   verbose: bool = False) -> dict:
    """Cells J and identity switches on the objects' own masks, and (``label_image``) on the
    exported label image."""
    own, exported, per_video = _CellTally(), _CellTally(), []
    for seed in seeds:
        style = "phase" if seed % 2 else "fluorescence"
        tl = make_timelapse(int(seed), num_frames=num_frames, style=style)
        t0 = time.perf_counter()
        tracked = track_clicks(model, tl.frames, tl.labels, non_overlap=non_overlap)
        j, sw = own.add(score_tracks(tracked.masks, tl.labels, tl.lineage))
        j_label, sw_label = exported.add(score_tracks(tracked.label_masks, tl.labels, tl.lineage))
        per_video.append({"seed": int(seed), "style": style, "J": j, "tracks": len(tracked.masks), "switches": sw,
                          "label_image": {"J": j_label, "switches": sw_label},
                          "sec": round(time.perf_counter() - t0, 1)})
        if verbose:
            print(f"  cells seed {seed} ({style}): J {j:.3f}, {len(tracked.masks)} tracks, {sw} switches; "
                  f"label image J {j_label:.3f}, {sw_label} switches", file=sys.stderr)
    return {**own.summary(), "label_image": exported.summary(), "videos": per_video}


@dataclass
class _CellTally:
    ious: list[float] = field(default_factory=list)
    clicked: list[float] = field(default_factory=list)
    switches: int = 0
    tracks: int = 0

    def add(self, scores: dict[int, TrackScore]) -> tuple[float, int]:
        """Add one movie's tracks; returns that movie's J and switches."""
        ious = [v for s in scores.values() for v in s.ious]
        sw = sum(s.switches for s in scores.values())
        self.ious += ious
        self.clicked += [s.ious[0] for s in scores.values()]  # every clicked cell exists on frame 0
        self.switches += sw
        self.tracks += len(scores)
        return _mean(ious), sw

    def summary(self) -> dict:
        return {"J": _mean(self.ious), "J_clicked_frame": _mean(self.clicked), "tracks": self.tracks,
                "switches": self.switches, "switches_per_100_tracks": 100.0 * self.switches / max(self.tracks, 1)}


def evaluate_scenes(model, seeds, *, num_frames: int = 24, non_overlap: bool | None = None,
                    verbose: bool = False) -> dict:
    all_ious, clicked, per_video = [], [], []
    for seed in seeds:
        sv = make_scene_video(int(seed), num_frames=num_frames)
        scores = score_tracks(track_video(model, sv.frames, sv.labels, non_overlap=non_overlap), sv.labels)
        ious = [v for s in scores.values() for v in s.ious]
        clicked += [s.ious[0] for s in scores.values()]
        all_ious += ious
        per_video.append({"seed": int(seed), "J": _mean(ious),
                          "objects": len(scores)})
        if verbose:
            print(f"  scene seed {seed}: J {per_video[-1]['J']:.3f}", file=sys.stderr)
    return {"J": _mean(all_ious), "J_clicked_frame": _mean(clicked), "videos": per_video}


def dtype_agreement(name: str, config, seeds, *, num_frames: int = 12, image_size: int | None = None,
                    device: str = "cpu") -> dict:
    """Per-track Jaccard of bfloat16 tracking on `device` against float32 on the CPU (one click per
    object, all frames of a track together), on scene videos and time-lapses of the given seeds."""
    models = [load_model(name, config=config, device=dev, dtype=d, image_size=image_size)
              for dev, d in (("cpu", "float32"), (device, "bfloat16"))]
    out = {}
    for kind in ("scenes", "cells"):
        scores = []
        for seed in seeds:
            video = make_scene_video(int(seed), num_frames=num_frames) if kind == "scenes" else \
                make_timelapse(int(seed), num_frames=num_frames)
            a, b = (track_video(m, video.frames, video.labels) for m in models)
            scores += [jaccard(a[i], b[i]) for i in a]
        out[kind] = {"mean": _mean(scores), "min": float(min(scores)) if scores else float("nan")}
    return out


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (0 when both are empty)."""
    return float(np.logical_and(a, b).sum() / max(np.logical_or(a, b).sum(), 1))


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="micro-synthetic", help="model name or weights file")
    parser.add_argument("--config", default=None, help="config file for a weights file")
    parser.add_argument("--cells", type=int, default=8, help="number of held-out cell movies")
    parser.add_argument("--scenes", type=int, default=8, help="number of held-out scene videos")
    parser.add_argument("--seed", type=int, default=EVAL_SEED_BASE, help="first held-out seed")
    parser.add_argument("--image-size", type=int, default=None, help="working resolution (default: the model's)")
    rule = parser.add_mutually_exclusive_group()
    rule.add_argument("--non-overlap", dest="non_overlap", action="store_const", const=True, default=None,
                      help="track with the non-overlap rule for memories (touching cells)")
    rule.add_argument("--overlap", dest="non_overlap", action="store_const", const=False,
                      help="track without it (default: the model config's)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", default="auto", help="auto (bfloat16 where native), float32 or bfloat16")
    parser.add_argument("--bf16-agreement", type=int, default=0, metavar="N",
                        help="also compare bfloat16 (on --device) with CPU float32 tracking on N scene and N cell "
                             "videos (12 frames)")
    parser.add_argument("--json", default=None, help="also write the full results here")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.model, config=args.config, device=args.device, dtype=args.dtype,
                       image_size=args.image_size)
    t0 = time.perf_counter()
    seeds = range(args.seed, args.seed + max(args.cells, args.scenes))
    results = {"model": args.model, "image_size": model.image_size, "device": args.device,
               "dtype": str(model.compute_dtype).replace("torch.", ""),
               "non_overlap_memory": bool(model.config.non_overlap_masks_for_mem_enc if args.non_overlap is None
                                          else args.non_overlap)}
    if args.cells:
        results["cells"] = evaluate_cells(model, list(seeds)[: args.cells], non_overlap=args.non_overlap,
                                          verbose=args.verbose)
        c = results["cells"]
        print(f"cells:  J = {c['J']:.3f} over {c['tracks']} tracks in {args.cells} movies "
              f"(clicked frame: {c['J_clicked_frame']:.3f}); "
              f"identity switches = {c['switches_per_100_tracks']:.2f} per 100 tracks ({c['switches']})")
        lab = c["label_image"]
        print(f"        label image (as exported): J = {lab['J']:.3f} (clicked frame: {lab['J_clicked_frame']:.3f}); "
              f"identity switches = {lab['switches_per_100_tracks']:.2f} per 100 tracks ({lab['switches']})")
    if args.scenes:
        results["scenes"] = evaluate_scenes(model, list(seeds)[: args.scenes], non_overlap=args.non_overlap,
                                            verbose=args.verbose)
        sc = results["scenes"]
        print(f"scenes: J = {sc['J']:.3f} over {args.scenes} videos (clicked frame: {sc['J_clicked_frame']:.3f})")
    if args.bf16_agreement:
        agree = dtype_agreement(args.model, args.config, range(args.seed + 120, args.seed + 120 + args.bf16_agreement),
                                image_size=args.image_size, device=args.device)
        results["bf16_agreement"] = agree
        print(f"bf16 ({args.device}) vs fp32 (cpu), per-track Jaccard: " + "; ".join(
            f"{k} mean {v['mean']:.3f} (min {v['min']:.3f})" for k, v in agree.items()))
    rule = "on" if results["non_overlap_memory"] else "off"
    print(f"(non-overlap rule for memories: {rule}; {results['dtype']} on {args.device}; "
          f"{time.perf_counter() - t0:.0f} s)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

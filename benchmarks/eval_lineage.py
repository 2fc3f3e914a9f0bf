"""Cell tracking with lineage, scored with the Cell Tracking Challenge metrics (TRA, DET, SEG)
and a division precision / recall / F1.

    python benchmarks/eval_lineage.py [--movies 8] [--frames 60] [--runs clicks,auto,plain]
                                      [--new-cells-every 5] [--json out.json] [--keep DIR]

Data: ``make_timelapse(30_000_000 + i, num_frames=60, height=192, width=192, num_cells=8,
dtype=uint16)`` (fluorescence, with divisions, cells entering and leaving, touching pairs). The
seeds are held out: the micro model trained on 1_000_000 + i (cells) and 2_000_000 + i (scenes)
and was evaluated on 10_000_000 + i (``recipes/evaluate.py`` EVAL_SEED_BASE).

Runs (the shipped ``micro-synthetic`` model):

* ``clicks``: one positive click per cell on frame 0 (``clicks_for_labels``), then
  ``propagate_all(events=CellEvents(session, CellOptions(divisions=True,
  new_cells_every=N)))``: divisions and entering cells are found while tracking;
* ``auto``: ``add_automatic_masks(0)`` instead of the clicks, same lineage tracking;
* ``plain``: today's engine without lineage: the clicks, then a plain ``propagate_all()``;
* ``truth`` (not in the default set): the true labels and lineage written through the same
  export with every pixel kept (``min_area=0``): every score must be 1.0, a check of the scorer.

Each run's ``session.labels()`` and ``session.lineage.parents`` go through
``exports.write_ctc(res, exports.clean_labels(labels), parents)``; the ground truth is written as
``GT/TRA/man_track.txt``, ``GT/TRA/man_trackNNN.tif`` and ``GT/SEG/man_segNNN.tif`` (uint16,
three digits as the result masks). TRA markers are the full true masks on every frame (the CTC
ships small markers: a detection there needs only to cover half of the marker; here it must cover
half of the cell), and SEG is scored on every frame. py-ctcmetrics gives TRA, DET, SEG, the AOGM
error counts and its own branching correctness BC(i).

Division matching (ours, documented in docs/lineage.md): a *predicted division* is a mother
segment of ``res_track.txt`` with two or more children (a single-child link is a gap bridge, not
a division); its frame is the mother's last frame + 1. It matches a true division when the two
frames differ by at most the tolerance (1 frame; also reported at 0) and two of its children
match the two true daughters one to one with IoU >= 0.3 each, comparing the CTC masks on the
later of the two division frames (so the daughters' first masks whenever the frames agree).
Matching is one to one (maximum total IoU); counts are pooled over movies.

Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SEED_BASE = 30_000_000  # held out: training 1_000_000+ / 2_000_000+, evaluation 10_000_000+
MOVIE = dict(height=192, width=192, num_cells=8)
RUNS = ("clicks", "auto", "plain", "truth")
DEFAULT_RUNS = "clicks,auto,plain"
MIN_DAUGHTER_IOU = 0.3
TOLERANCE = 1
# Goals of the issue: (TRA, SEG, division F1 at +-1 frame)
GOALS = {"clicks": {"TRA": 0.95, "SEG": 0.80, "div_F1": 0.80},
         "auto": {"TRA": 0.90, "SEG": 0.75, "div_F1": 0.70}}


# ---------------------------------------------------------------------------- engine version
ENGINE_FILES = ("video/cells.py", "video/session.py", "video/tracker.py", "automask.py", "automask_ops.py",
                "exports/lineage.py", "exports/ctc.py")


def engine_fingerprint() -> dict:
    """The commit, whether src/ has uncommitted changes, and a short hash of the files that decide
    the scores (others may edit the tree while a run goes on: compare the start and the end)."""
    import hashlib
    import subprocess

    import sam2_plugins

    root = Path(sam2_plugins.__file__).parent
    files = {}
    for name in ENGINE_FILES:
        try:
            files[name] = hashlib.sha256((root / name).read_bytes()).hexdigest()[:10]
        except OSError:
            files[name] = None
    out = {"files": files, "commit": None, "src_changed": None}
    try:
        git = ["git", "-C", str(root)]
        out["commit"] = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                       timeout=20).stdout.strip() or None
        status = subprocess.run(git + ["status", "--porcelain", "--", "."], capture_output=True, text=True, timeout=20)
        out["src_changed"] = bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return out


# ---------------------------------------------------------------------------- data
def make_movie(index: int, num_frames: int, seed_base: int = SEED_BASE):
    from sam2_plugins.synthetic import make_timelapse

    return make_timelapse(seed_base + index, num_frames=num_frames, dtype=np.uint16, **MOVIE)


def movie_facts(lapse) -> dict:
    """Divisions (true mother -> daughters, division frame), entering and leaving cells."""
    T = lapse.num_frames
    kids = lapse.children()
    divisions = [{"mother": m, "frame": lapse.tracks[m].last + 1, "daughters": d} for m, d in sorted(kids.items())]
    entering = [k for k, tr in lapse.tracks.items() if tr.parent == 0 and tr.first > 0]
    leaving = [k for k, tr in lapse.tracks.items() if tr.last < T - 1 and k not in kids]
    return {"seed": int(lapse.seed), "tracks": len(lapse.tracks),
            "cells_frame0": int(len(np.unique(lapse.labels[0])) - 1),
            "divisions": divisions, "entering": [{"id": k, "frame": lapse.tracks[k].first} for k in entering],
            "leaving": leaving}


def _mask_name(prefix: str, t: int, num_frames: int) -> str:
    from sam2_plugins.exports import ctc_mask_name

    return prefix + ctc_mask_name(t, num_frames)[len("mask"):]  # the result masks' digit count


def write_gt(folder: Path, lapse) -> Path:
    """CTC ground truth: TRA/man_track.txt + TRA/man_trackNNN.tif + SEG/man_segNNN.tif (uint16)."""
    import tifffile

    T = lapse.num_frames
    (folder / "TRA").mkdir(parents=True, exist_ok=True)
    (folder / "SEG").mkdir(parents=True, exist_ok=True)
    (folder / "TRA" / "man_track.txt").write_text(lapse.ctc_man_track())
    labels = lapse.labels.astype(np.uint16)
    for t in range(T):
        tifffile.imwrite(folder / "TRA" / _mask_name("man_track", t, T), labels[t])
        tifffile.imwrite(folder / "SEG" / _mask_name("man_seg", t, T), labels[t])
    return folder


# ---------------------------------------------------------------------------- runs
class DivisionLog:
    """Wraps the events object and notes which of its two paths recorded each division, from the
    public lineage alone: the split test records a division on the first frame of the split
    (``split_frames - 1`` frames back, 1 with the default 2), the new-cell search on the frame it
    searches."""

    def __init__(self, session, events) -> None:
        self.session, self.events, self.path = session, events, {}

    def __call__(self, result):
        before = {d.mother for d in self.session.lineage.divisions()}
        restart = self.events(result)
        for d in self.session.lineage.divisions():
            if d.mother not in before:
                self.path[d.mother] = "search" if d.frame == result.frame_index else "split"
        return restart


def track(model, lapse, run: str, new_cells_every: int | None) -> tuple[np.ndarray, dict[int, int], dict[int, str]]:
    """(T, H, W) labels, {daughter: mother} and {mother: path that found the division} of one run."""
    if run == "truth":
        return lapse.labels.astype(np.uint16), {k: p for k, p in lapse.lineage.items() if p}, {}
    from sam2_plugins.sample import clicks_for_labels
    from sam2_plugins.video.cells import CellEvents, CellOptions

    session = model.open_video(lapse.frames)
    try:
        if run == "auto":
            session.add_automatic_masks(0)
        else:
            for o in clicks_for_labels(lapse.labels, 0):
                session.add_points(o["frame"], o["id"], o["points"], o["labels"])
        log = DivisionLog(session, None)
        if run == "plain":
            list(session.propagate_all())
        else:
            log.events = CellEvents(session, CellOptions(divisions=True, new_cells_every=new_cells_every))
            list(session.propagate_all(events=log))
        return session.labels(), session.lineage.parents, log.path
    finally:
        session.close()


def write_result(folder: Path, labels: np.ndarray, parents: dict[int, int], *, exact: bool = False) -> dict[int, int]:
    """The CTC result folder, through the export every user gets (its speck rule drops pieces
    under 10 pixels); ``exact`` keeps every pixel (the truth run: the scorer's own check).
    Returns CTC label -> object id."""
    from sam2_plugins import exports

    if exact:
        written = exports.write_ctc(folder, labels, parents, min_area=0)
    else:
        written = exports.write_ctc(folder, exports.clean_labels(labels), parents)
    return written.source_ids()


# ---------------------------------------------------------------------------- reading CTC folders
def read_ctc(folder: Path, track_file: str, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4) L B E P rows and the (T, H, W) mask stack of a CTC folder."""
    import tifffile

    rows = [[int(v) for v in line.split()] for line in (folder / track_file).read_text().splitlines() if line.strip()]
    tracks = np.array(rows, np.int64).reshape(-1, 4)
    files = sorted(p for p in folder.glob(f"{prefix}*.tif"))
    masks = np.stack([tifffile.imread(p) for p in files])
    return tracks, masks


def ctc_divisions(tracks: np.ndarray) -> list[tuple[int, int, list[int]]]:
    """(mother, division frame = mother's end + 1, children) for every segment with >= 2 children."""
    out = []
    ends = {int(L): int(E) for L, _, E, _ in tracks}
    parents, counts = np.unique(tracks[:, 3], return_counts=True)
    for p, c in zip(parents, counts):
        if p > 0 and c >= 2 and int(p) in ends:
            kids = sorted(int(L) for L, _, _, P in tracks if P == p)
            out.append((int(p), ends[int(p)] + 1, kids))
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int((a | b).sum())
    return float((a & b).sum() / union) if union else 0.0


def _daughters_iou(pred_masks, pred_kids, true_masks, true_kids, frame: int) -> float | None:
    """Sum of IoUs of the best one-to-one pairing of two predicted children with the two true
    daughters on ``frame``, None if no pairing has IoU >= MIN_DAUGHTER_IOU for both."""
    if frame >= len(true_masks) or len(true_kids) != 2:
        return None
    p, g = pred_masks[frame], true_masks[frame]
    ious = {(a, b): _iou(p == a, g == b) for a in pred_kids for b in true_kids}
    best = None
    for a in pred_kids:
        for a2 in pred_kids:
            if a2 == a:
                continue
            x, y = ious[(a, true_kids[0])], ious[(a2, true_kids[1])]
            if x >= MIN_DAUGHTER_IOU and y >= MIN_DAUGHTER_IOU and (best is None or x + y > best):
                best = x + y
    return best


def match_divisions(pred_tracks, pred_masks, true_tracks, true_masks, tolerance: int) -> dict:
    """One-to-one matching of predicted to true divisions (see the module docs)."""
    from scipy.optimize import linear_sum_assignment

    pred, true = ctc_divisions(pred_tracks), ctc_divisions(true_tracks)
    score = np.zeros((len(true), len(pred)))
    for i, (_, ft, tk) in enumerate(true):
        for j, (_, fp, pk) in enumerate(pred):
            if abs(fp - ft) <= tolerance:
                s = _daughters_iou(pred_masks, pk, true_masks, tk, max(fp, ft))
                score[i, j] = 0.0 if s is None else s
    pairs = []
    if score.size:
        rows, cols = linear_sum_assignment(-score)
        pairs = [(int(r), int(c)) for r, c in zip(rows, cols) if score[r, c] > 0]
    tp = len(pairs)
    return {"tp": tp, "fp": len(pred) - tp, "fn": len(true) - tp,
            "matches": [{"true_mother": true[r][0], "true_frame": true[r][1], "pred_mother": pred[c][0],
                         "offset": pred[c][1] - true[r][1]} for r, c in pairs],
            "unmatched_true": [{"mother": true[r][0], "frame": true[r][1]} for r in range(len(true))
                               if r not in {p[0] for p in pairs}],
            "unmatched_pred": [{"mother": pred[c][0], "frame": pred[c][1], "children": pred[c][2]}
                               for c in range(len(pred)) if c not in {p[1] for p in pairs}]}


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall, F1 (1.0 where nothing was there to find and nothing was claimed)."""
    p = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
    r = tp / (tp + fn) if tp + fn else (1.0 if fp == 0 else 0.0)
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


# ---------------------------------------------------------------------------- diagnostics
def _matches(pred: np.ndarray, true: np.ndarray) -> dict[int, tuple[float, int]]:
    """CTC SEG rule on one frame: true label R matches predicted S when |R & S| > 0.5 |R|.
    Returns {R: (Jaccard |R & S| / |R | S|, S)}, (0.0, 0) when nothing matches."""
    t_ids, t_inv = np.unique(true, return_inverse=True)
    p_ids, p_inv = np.unique(pred, return_inverse=True)
    joint = np.zeros((len(t_ids), len(p_ids)), np.int64)
    np.add.at(joint, (t_inv.ravel(), p_inv.ravel()), 1)
    t_area, p_area = joint.sum(1), joint.sum(0)
    out = {}
    for i, r in enumerate(t_ids):
        if r == 0:
            continue
        j = int(np.argmax(np.where(p_ids == 0, -1, joint[i])))
        inter = joint[i, j] if p_ids[j] != 0 else 0
        out[int(r)] = ((float(inter / (t_area[i] + p_area[j] - inter)), int(p_ids[j]))
                       if inter * 2 > t_area[i] else (0.0, 0))
    return out


def diagnose(pred_tracks, pred_masks, true_masks, lapse) -> dict:
    """Where a run loses: SEG by kind of cell (split into 'not found' and outline quality),
    entering cells (frames until first detected), divisions at any offset, and predicted tracks
    that never are any true cell's match (false tracks), by how they began."""
    facts = movie_facts(lapse)
    entering = {e["id"] for e in facts["entering"]}
    kind = {k: "daughters" if tr.parent else ("entering" if k in entering else "frame0")
            for k, tr in lapse.tracks.items()}
    seg: dict[str, list[float]] = {"frame0": [], "daughters": [], "entering": []}
    per_track: dict[int, list[float]] = {k: [] for k in lapse.tracks}
    merged: dict[str, int] = {"frame0": 0, "daughters": 0, "entering": 0}
    alone: dict[int, list[bool]] = {k: [] for k in lapse.tracks}  # matched by a label that covers no other cell
    matched_on: list[dict[int, int]] = []  # per frame: predicted label -> true label it matches
    for t in range(len(true_masks)):
        hits = _matches(pred_masks[t], true_masks[t])
        matched_on.append({s: r for r, (_, s) in hits.items() if s})
        shared = np.bincount([s for _, s in hits.values() if s] or [0])
        for r, (j, s) in hits.items():
            seg[kind[r]].append(j)
            per_track[r].append(j)
            both = bool(s) and shared[s] > 1  # one predicted label holds this cell and another
            merged[kind[r]] += both
            alone[r].append(j > 0 and not both)
    enter = []
    for k in sorted(entering):
        tr = lapse.tracks[k]
        found = [t for t, ok in zip(range(tr.first, tr.last + 1), alone[k]) if ok]
        enter.append({"id": k, "first": tr.first, "frames": tr.last - tr.first + 1,
                      "delay": (found[0] - tr.first) if found else None, "frames_found": len(found)})
    # predicted segments never matched to a true cell, by how they began
    false_tracks = {"frame0": 0, "division": 0, "later": 0, "frames": 0}
    ever = {s for frame in matched_on for s in frame}
    for L, B, E, P in pred_tracks:
        if int(L) not in ever:
            false_tracks["frame0" if B == 0 else ("division" if P else "later")] += 1
            false_tracks["frames"] += int(E - B + 1)
    anyoffset = match_divisions(pred_tracks, pred_masks, lapse_tracks_array(lapse), true_masks, len(true_masks))
    # predicted divisions that match no true division at any offset: of what?
    parent = {int(L): int(P) for L, _, _, P in pred_tracks}
    div_mothers = {m for m, _, _ in ctc_divisions(pred_tracks)}
    spurious = {"repeat": 0, "false_track": 0, "real_cell": 0}
    for d in anyoffset["unmatched_pred"]:
        m, f = d["mother"], d["frame"]
        if parent.get(m, 0) in div_mothers:
            spurious["repeat"] += 1  # a daughter of a predicted division divides again
        elif m not in ever:
            spurious["false_track"] += 1
        else:
            spurious["real_cell"] += 1
    return {"seg": {k: [float(np.sum(v)), len(v), int(sum(1 for x in v if x > 0)), merged[k]] for k, v in seg.items()},
            "entering": enter, "div_any_offset": anyoffset, "false_tracks": false_tracks,
            "spurious_divisions": spurious}


def lapse_tracks_array(lapse) -> np.ndarray:
    rows = [[k, tr.first, tr.last, tr.parent] for k, tr in sorted(lapse.tracks.items())]
    return np.array(rows, np.int64).reshape(-1, 4)


# ---------------------------------------------------------------------------- scoring
def score(res: Path, gt: Path, lapse) -> dict:
    from ctc_metrics import evaluate_sequence

    with contextlib.redirect_stdout(io.StringIO()):  # it prints its inputs and results
        ctc = evaluate_sequence(res=str(res), gt=str(gt), metrics=["DET", "SEG", "TRA", "BC"], threads=1)
    pred_tracks, pred_masks = read_ctc(res, "res_track.txt", "mask")
    true_tracks, true_masks = read_ctc(gt / "TRA", "man_track.txt", "man_track")
    out = {"valid": ctc.get("Valid", 1) != 0}
    for key in ("TRA", "DET", "SEG", "BC(0)", "BC(1)", "AOGM", "AOGM_0"):
        v = ctc.get(key)
        out[key] = float(v) if v is not None else (0.0 if key in ("TRA", "DET", "SEG") else math.nan)
    out["aogm"] = {k: int(ctc.get(f"AOGM_{k}") or 0) for k in ("NS", "FN", "FP", "ED", "EA", "EC")}
    out["div"] = {tol: match_divisions(pred_tracks, pred_masks, true_tracks, true_masks, tol) for tol in (0, TOLERANCE)}
    out["diag"] = diagnose(pred_tracks, pred_masks, true_masks, lapse)
    out["segments"] = int(len(pred_tracks))
    return out


def count_paths(m: dict, path: dict[str, str]) -> dict[str, dict[str, int]]:
    """How the predicted divisions were found (split test / new-cell search), for those that
    match a true division (+-TOLERANCE) and those that match none at any offset."""
    out = {"matched": {"split": 0, "search": 0}, "spurious": {"split": 0, "search": 0}}
    for x in m["div"][TOLERANCE]["matches"]:
        key = path.get(str(x["pred_mother"]))
        if key in out["matched"]:
            out["matched"][key] += 1
    for x in m["diag"]["div_any_offset"]["unmatched_pred"]:
        key = path.get(str(x["mother"]))
        if key in out["spurious"]:
            out["spurious"][key] += 1
    return out


# ---------------------------------------------------------------------------- summary and table
def summarise(per_movie: list[dict]) -> dict:
    s: dict = {"movies": len(per_movie)}
    for key in ("TRA", "DET", "SEG", "BC(0)", "BC(1)"):
        s[key] = float(np.nanmean([m[key] for m in per_movie]))
    s["seconds_per_movie"] = float(np.mean([m["seconds"] for m in per_movie]))
    s["invalid"] = sum(1 for m in per_movie if not m["valid"])
    for tol in (0, TOLERANCE):
        tp, fp, fn = (sum(m["div"][tol][k] for m in per_movie) for k in ("tp", "fp", "fn"))
        p, r, f = prf(tp, fp, fn)
        s[f"div{tol}"] = {"tp": tp, "fp": fp, "fn": fn, "precision": p, "recall": r, "F1": f}
    s["div_F1"] = s[f"div{TOLERANCE}"]["F1"]
    s["aogm"] = {k: sum(m["aogm"][k] for m in per_movie) for k in per_movie[0]["aogm"]}
    # diagnostics
    seg = {}
    for k in ("frame0", "daughters", "entering"):
        total, n, found, shared = (sum(m["diag"]["seg"][k][i] for m in per_movie) for i in range(4))
        seg[k] = {"SEG": total / n if n else math.nan, "found": found / n if n else math.nan,
                  "merged": shared / n if n else math.nan,
                  "J_when_found": total / found if found else math.nan, "cell_frames": n}
    s["seg_by_kind"] = seg
    ent = [e for m in per_movie for e in m["diag"]["entering"]]
    delays = [e["delay"] for e in ent if e["delay"] is not None]
    s["entering"] = {"cells": len(ent), "found": len(delays), "delays": delays,
                     "frames_found": sum(e["frames_found"] for e in ent), "frames": sum(e["frames"] for e in ent)}
    offsets = [x["offset"] for m in per_movie for x in m["diag"]["div_any_offset"]["matches"]]
    s["div_offsets"] = {"exact": sum(o == 0 for o in offsets), "one": sum(abs(o) == 1 for o in offsets),
                        "late": sum(o > 1 for o in offsets), "early": sum(o < -1 for o in offsets),
                        "missed": sum(m["diag"]["div_any_offset"]["fn"] for m in per_movie),
                        "spurious": sum(m["diag"]["div_any_offset"]["fp"] for m in per_movie),
                        "offsets": sorted(offsets)}
    s["false_tracks"] = {k: sum(m["diag"]["false_tracks"][k] for m in per_movie)
                         for k in per_movie[0]["diag"]["false_tracks"]}
    s["spurious_divisions"] = {k: sum(m["diag"]["spurious_divisions"][k] for m in per_movie)
                               for k in per_movie[0]["diag"]["spurious_divisions"]}
    s["segments"] = sum(m["segments"] for m in per_movie)
    s["div_paths"] = {k: {p: sum(m["div_paths"][k][p] for m in per_movie) for p in ("split", "search")}
                      for k in ("matched", "spurious")}
    return s


def _goal_text(run: str, s: dict) -> str:
    goal = GOALS.get(run)
    if goal is None:
        return ""
    parts = []
    for key, name in (("TRA", "TRA"), ("SEG", "SEG"), ("div_F1", "F1")):
        ok = s[key] >= goal[key]
        parts.append(f"{name}>={goal[key]:.2f} {'met' if ok else 'MISSED'}")
    return ", ".join(parts)


def format_table(data: dict, summaries: dict[str, dict], args) -> str:
    n_div = sum(len(m["divisions"]) for m in data["movies"])
    n_ent = sum(len(m["entering"]) for m in data["movies"])
    n_leave = sum(len(m["leaving"]) for m in data["movies"])
    n_tracks = sum(m["tracks"] for m in data["movies"])
    seeds = [m["seed"] for m in data["movies"]]
    eng = data["engine"]
    lines = [
        f"Lineage tracking, model {args.model}; {len(seeds)} movies x {args.frames} frames, 192x192 uint16 "
        f"fluorescence, 8 cells on frame 0 (seeds {seeds[0]}..{seeds[-1]}, held out)",
        f"data: {n_div} divisions, {n_ent} entering cells, {n_leave} cells leaving, {n_tracks} true tracks; "
        f"lineage runs: CellOptions(divisions=True, new_cells_every={args.new_cells_every})",
        f"engine: commit {eng['commit']}" + (" + uncommitted changes in src/" if eng["src_changed"] else "")
        + "; " + ", ".join(f"{k.split('/')[-1]} {v}" for k, v in eng["files"].items()
                           if k in ("video/cells.py", "automask.py")),
        "",
        f"{'run':<7} {'movies':>6} {'TRA':>6} {'DET':>6} {'SEG':>6} | {'div P':>6} {'div R':>6} {'div F1':>6} "
        f"{'(tp/fp/fn)':>11} | {'F1@0':>5} {'BC(1)':>6} | {'s/movie':>7}  goals",
    ]
    for run, s in summaries.items():
        d, d0 = s[f"div{TOLERANCE}"], s["div0"]
        lines.append(
            f"{run:<7} {s['movies']:>6} {s['TRA']:>6.3f} {s['DET']:>6.3f} {s['SEG']:>6.3f} | {d['precision']:>6.3f} "
            f"{d['recall']:>6.3f} {d['F1']:>6.3f} {str(d['tp']) + '/' + str(d['fp']) + '/' + str(d['fn']):>11} | "
            f"{d0['F1']:>5.3f} {s['BC(1)']:>6.3f} | {s['seconds_per_movie']:>7.1f}  {_goal_text(run, s)}"
            + (f"  ({s['invalid']} invalid)" if s["invalid"] else ""))
    lines += ["", f"division matching: predicted mother with >= 2 children, both daughters IoU >= {MIN_DAUGHTER_IOU}, "
              f"frame within +-{TOLERANCE} (F1@0: exact frame); BC(1): py-ctcmetrics branching correctness",
              "", "where the runs lose:",
              f"{'run':<7} | divisions (any offset): {'exact':>5} {'+-1':>4} {'late':>4} {'early':>5} {'missed':>6} "
              f"{'spurious':>8} | entering: found  delay(frames)  frames found alone | AOGM NS FN FP ED EA EC"]
    for run, s in summaries.items():
        o, e, a = s["div_offsets"], s["entering"], s["aogm"]
        delays = e["delays"]
        delay = f"{np.median(delays):.0f} med, {max(delays)} max" if delays else "-"
        lines.append(
            f"{run:<7} | {'':>23} {o['exact']:>5} {o['one']:>4} {o['late']:>4} {o['early']:>5} {o['missed']:>6} "
            f"{o['spurious']:>8} | {e['found']:>2}/{e['cells']:<2}  {delay:>13}  {e['frames_found']}/{e['frames']}"
            f" | {a['NS']} {a['FN']} {a['FP']} {a['ED']} {a['EA']} {a['EC']}")
    lines.append("division offsets (predicted - true frame, matches at any offset): " + "; ".join(
        f"{run} {s['div_offsets']['offsets']}" for run, s in summaries.items()))
    lines += ["", f"{'run':<7} | divisions found by the split test / by the new-cell search: matching a true one "
              f"(+-{TOLERANCE}) | matching none"]
    for run, s in summaries.items():
        dp = s["div_paths"]
        lines.append(f"{run:<7} | {dp['matched']['split']} / {dp['matched']['search']} | "
                     f"{dp['spurious']['split']} / {dp['spurious']['search']}")
    lines += ["", f"{'run':<7} | predicted segments | never a true cell's match, begun on frame 0 / by a division / "
              f"later (frames) | spurious divisions: repeat / of a false track / of a real cell"]
    for run, s in summaries.items():
        ft, sp = s["false_tracks"], s["spurious_divisions"]
        lines.append(f"{run:<7} | {s['segments']:>18} | {ft['frame0']} / {ft['division']} / {ft['later']} "
                     f"({ft['frames']})"
                     f" | {sp['repeat']} / {sp['false_track']} / {sp['real_cell']}")
    lines += ["", f"{'run':<7} | SEG by cell kind: SEG (share of cell-frames found, share found but merged with "
              "another cell in one predicted label, Jaccard when found)"]
    for run, s in summaries.items():
        parts = [f"{k} {v['SEG']:.3f} ({v['found']:.2f}, {v['merged']:.2f}, {v['J_when_found']:.3f})"
                 for k, v in s["seg_by_kind"].items() if v["cell_frames"]]
        lines.append(f"{run:<7} | " + "; ".join(parts))
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--movies", type=int, default=8)
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--runs", default=DEFAULT_RUNS, help=f"comma-separated, of {', '.join(RUNS)}")
    p.add_argument("--new-cells-every", type=int, default=5, help="frames between searches for new cells (0: never)")
    p.add_argument("--first-movie", type=int, default=0, help="index of the first movie (seed = 30_000_000 + index)")
    p.add_argument("--max-movies", action="append", default=[], metavar="RUN=N",
                   help="fewer movies for one run, e.g. auto=2 (the first N)")
    p.add_argument("--model", default="micro-synthetic")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", help="write every number (per movie and summary) here")
    p.add_argument("--keep", help="write the GT and result folders here instead of a temporary folder")
    args = p.parse_args(argv)
    args.runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    bad = [r for r in args.runs if r not in RUNS]
    if bad:
        p.error(f"unknown runs {bad}: choose from {', '.join(RUNS)}")
    args.limits = {}
    for item in args.max_movies:
        run, _, n = item.partition("=")
        if run not in RUNS or not n.isdigit():
            p.error(f"--max-movies takes RUN=N, got {item!r}")
        args.limits[run] = int(n)
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    every = args.new_cells_every or None
    import sam2_plugins.automask  # noqa: F401  (imported now: the versions fingerprinted are the ones that run)
    import sam2_plugins.video.cells  # noqa: F401

    engine = engine_fingerprint()
    model = None
    if any(r != "truth" for r in args.runs):
        from sam2_plugins import load_model

        model = load_model(args.model, device=args.device)
    indices = range(args.first_movie, args.first_movie + args.movies)
    with contextlib.ExitStack() as stack:
        root = (Path(args.keep) if args.keep
                else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="eval_lineage_"))))
        movies, facts = [], []
        for i in indices:
            lapse = make_movie(i, args.frames)
            gt = write_gt(root / f"movie{i:03d}" / "GT", lapse)
            movies.append((i, lapse, gt))
            facts.append(movie_facts(lapse))
            f = facts[-1]
            print(f"movie {i} (seed {f['seed']}): {f['tracks']} tracks, {f['cells_frame0']} cells on frame 0, "
                  "divisions "
                  + (", ".join(f"{d['mother']}->{d['daughters']} on {d['frame']}" for d in f["divisions"]) or "none")
                  + "; entering " + (", ".join(f"{e['id']} on {e['frame']}" for e in f["entering"]) or "none"),
                  file=sys.stderr, flush=True)
        data = {"seed_base": SEED_BASE, "frames": args.frames, "movies": facts}
        per_run: dict[str, list[dict]] = {}
        for run in args.runs:
            todo = movies[: args.limits.get(run, len(movies))]
            per_run[run] = []
            for n, (i, lapse, gt) in enumerate(todo, start=1):
                start = time.perf_counter()
                labels, parents, paths = track(model, lapse, run, every)
                seconds = time.perf_counter() - start
                res = root / f"movie{i:03d}" / f"{run}_RES"
                source = write_result(res, labels, parents, exact=run == "truth")
                m = score(res, gt, lapse)
                m["division_path"] = {str(label): paths[oid] for label, oid in source.items()
                                      if oid in paths}
                m["div_paths"] = count_paths(m, m["division_path"])
                m.update(movie=i, seed=int(lapse.seed), seconds=seconds)
                per_run[run].append(m)
                d = m["div"][TOLERANCE]
                print(f"[{run}] movie {n}/{len(todo)} (seed {lapse.seed}): TRA {m['TRA']:.3f} DET {m['DET']:.3f} "
                      f"SEG {m['SEG']:.3f}, divisions tp/fp/fn {d['tp']}/{d['fp']}/{d['fn']}, {seconds:.1f} s",
                      file=sys.stderr, flush=True)
    summaries = {run: summarise(ms) for run, ms in per_run.items()}
    after = engine_fingerprint()
    if after["files"] != engine["files"]:
        changed = [f for f in ENGINE_FILES if after["files"][f] != engine["files"][f]]
        print(f"warning: {', '.join(changed)} changed on disk during the run; the run used the versions of its "
              f"start (imported then), fingerprinted in the table", file=sys.stderr)
    data["engine"] = engine
    table = format_table(data, summaries, args)
    print(table, flush=True)
    result = {"data": data, "summary": summaries, "per_movie": per_run, "table": table,
              "settings": {"model": args.model, "new_cells_every": every, "tolerance": TOLERANCE,
                           "min_daughter_iou": MIN_DAUGHTER_IOU, "goals": GOALS}}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=_json_default))
    return result


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    raise TypeError(type(o))


if __name__ == "__main__":
    main()

"""Propagation frames/s of the default track step against the padded one (fixed shapes), same run.

The padded path (src/sam2_plugins/video/padded.py, docs/gpu-path.md) gives every object of a frame a
memory bank of one size from the first tracked frame on and runs all objects as one batch, so CUDA
graphs and ``torch.compile(mode="reduce-overhead")`` can replay the step. Rows, per model and object
count: ``default`` (exact-size banks, a batch per layout), ``padded``, and with ``--compile on|both``
``padded, compiled <mode>`` (:func:`compile_fixed_step`: memory attention, decoder and memory
encoder with that mode, the image encoder without CUDA graphs; a fresh model, so compilation is in
its first frames, outside the steady state).

Frames/s over two spans: ``first`` (frames 1-16, while a default bank still grows) and ``steady``
(frames 17.., bank and pointer window full). Objects are clicked on frames 0..L-1 (``--layouts L``,
object i on frame i mod L) and tracked from frame L on: with L > 1 their memory layouts differ on
every frame (the default path runs one batch per layout). ``agreement``: the smallest mask IoU
against the default path's over every frame and object (bfloat16 rounding on GPUs), and masks
present. Ratios are against ``default`` of the same model, objects and run.

    python benchmarks/bench_fixed_shapes.py                        # CUDA if present, else CPU
    python benchmarks/bench_fixed_shapes.py --device cpu --dtype float32 --image-size 256 --objects 1 4
    python benchmarks/bench_fixed_shapes.py --device cuda --objects 1 64 --compile both --out results.md
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from common import grid_points, machine, scene_frames, seeded_model

STEADY = 17  # first frame (of the propagation) with a full bank and pointer window on the default path


def load(name: str, device: str, dtype: str, image_size: int | None):
    if name.startswith("sam2"):
        return seeded_model(name, device=device, dtype=dtype, image_size=image_size)
    from sam2_plugins import load_model  # a bundled model (micro-synthetic)

    return load_model(name, device=device, dtype=dtype, image_size=image_size)


def track(model, frames, clicks, layouts: int, fixed_shapes: bool, device) -> tuple[list[float], dict]:
    """Seconds per tracked frame (GPU work finished, results on the host) and the masks by (frame, object)."""
    session = model.open_video(frames)
    session.tracker.fixed_shapes = fixed_shapes
    for obj_id, (x, y) in enumerate(clicks, start=1):
        session.add_points((obj_id - 1) % layouts, obj_id, [[x, y]], [1])
    seconds, masks = [], {}
    start = time.perf_counter()
    for result in session.propagate(layouts):
        if device.type == "cuda":
            torch.cuda.synchronize()
        now = time.perf_counter()
        seconds.append(now - start)
        start = now
        for k, oid in enumerate(result.object_ids):
            masks[result.frame_index, oid] = result.masks[k]
    session.close()
    return seconds, masks


def compiled_graphs() -> int:
    """Graphs torch.compile has made in this process (recompilations for new shapes add to it)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def agreement(masks: dict, reference: dict) -> tuple[float, float]:
    """(smallest IoU against the reference's masks, fraction of (frame, object) with a mask)."""
    ious, present = [], 0
    for key, ref in reference.items():
        union = np.logical_or(masks[key], ref).sum()
        ious.append(1.0 if union == 0 else np.logical_and(masks[key], ref).sum() / union)
        present += bool(masks[key].any())
    return float(min(ious)), present / len(reference)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["sam2.1-hiera-tiny"])
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--frames", type=int, default=30, help="frames tracked (steady state from the 17th)")
    parser.add_argument("--layouts", type=int, default=4, help="objects are clicked on this many frames")
    parser.add_argument("--compile", choices=["off", "on", "both"], default="off",
                        help="padded rows compiled (on), or both uncompiled and compiled")
    parser.add_argument("--compile-mode", default="reduce-overhead")
    parser.add_argument("--compile-objects", type=int, nargs="+", default=None,
                        help="object counts of the compiled rows (default: all of --objects)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, help="default: bfloat16 on CUDA, float32 elsewhere")
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=1, help="runs per row, interleaved; the best is kept")
    parser.add_argument("--out", type=Path, default=None, help="append the table to this markdown file")
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = args.dtype or ("bfloat16" if device.type == "cuda" else "float32")
    from sam2_plugins.video.padded import compile_fixed_step

    size = args.image_size or 1024
    frames = scene_frames(args.layouts + args.frames, size)
    head = (f"\n## {datetime.date.today()} — default vs padded track step (bench_fixed_shapes.py), {machine()}\n"
            f"`python benchmarks/bench_fixed_shapes.py {' '.join(sys.argv[1:])}` ({dtype}, {size}x{size}, "
            f"{args.frames} frames tracked, objects clicked on {args.layouts} frames)\n\n"
            "| model | objects | path | frames/s first 16 | frames/s steady | steady vs default "
            "| min IoU vs default | masks present | peak GPU memory |\n|---|---|---|---|---|---|---|---|---|")
    print(head, flush=True)
    if args.out:
        with args.out.open("a") as fh:
            fh.write(head + "\n")
    compiled_counts = args.compile_objects or args.objects
    for name in args.models:
        for n in args.objects:
            clicks = grid_points(n, size)
            contenders = [("default", False, False)]
            if args.compile in ("off", "both"):
                contenders.append(("padded", True, False))
            if args.compile in ("on", "both") and n in compiled_counts:
                contenders.append((f"padded, compiled {args.compile_mode}", True, True))
            plain = load(name, args.device, dtype, args.image_size)  # default and padded share it
            models = {label: plain for label, _, compiled in contenders if not compiled}
            best: dict[str, tuple[float, float, dict, float]] = {}  # label -> (first, steady, masks, peak)
            for _ in range(args.repeats):  # contenders interleaved; each keeps its best run (busy machines)
                for label, fixed, compiled in contenders:
                    try:
                        if label not in models:  # compiled: a model of its own, compiled in place
                            models[label] = load(name, args.device, dtype, args.image_size)
                            compile_fixed_step(models[label].network, args.compile_mode)
                        model = models[label]
                        if device.type == "cuda":
                            torch.cuda.reset_peak_memory_stats()
                        seconds, masks = track(model, frames, clicks, args.layouts, fixed, device)
                    except Exception:  # noqa: BLE001 - report, go on with the other rows
                        print(f"FAILED: {name}, {n} object(s), {label}", flush=True)
                        traceback.print_exc()
                        continue
                    first = 1.0 / np.mean(seconds[1:STEADY])
                    steady = 1.0 / np.mean(seconds[STEADY:]) if len(seconds) > STEADY else float("nan")
                    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
                    graphs = f", {compiled_graphs()} graphs compiled so far" if compiled else ""
                    print(f"  run: {name}, {n} object(s), {label}: {first:.2f} / {steady:.2f} frames/s{graphs}", flush=True)
                    if label not in best or steady > best[label][1]:
                        best[label] = (max(first, best.get(label, (0.0,))[0]), steady, masks, peak)
            if "default" not in best:
                continue
            base_steady, base_masks = best["default"][1], best["default"][2]
            for label, (first, steady, masks, peak) in best.items():
                iou, present = agreement(masks, base_masks)
                row = (f"| {name} | {n} | {label} | {first:.2f} | {steady:.2f} | {steady / base_steady:.2f}x "
                       f"| {iou:.4f} | {present:.0%} | {peak:.1f} GiB |")
                print(row, flush=True)
                if args.out:
                    with args.out.open("a") as fh:
                        fh.write(row + "\n")
            del plain, models
            if device.type == "cuda":
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()

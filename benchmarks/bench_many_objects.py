"""Many objects against the memory budget: propagation with ``memory_mb`` below what one frame
reads (every object's 6 previous memories and 16 pointers), against a budget that holds all.

Same model, frames and clicks for both runs, in one process; the ratio is the cost of the small
budget. Each stored record should go to disk at most once per pass: records re-read from disk
every frame (a budget smaller than the working set) show up as spills far above the record count.

    python benchmarks/bench_many_objects.py                         # micro-synthetic, 8 objects
    python benchmarks/bench_many_objects.py --model sam2.1-hiera-tiny --objects 64 --small-mb 256 --device cuda
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from common import clicked_session, frame_stamps, grid_points, machine, scene_frames, seeded_model


def run(model, frames, clicks, memory_mb: float, device: torch.device) -> tuple[float, int, int, float]:
    """(seconds per frame after the first, records spilled, records stored, pool MB at the end)."""
    session = clicked_session(model, frames, clicks, memory_mb=memory_mb)
    stamps = frame_stamps(session, device)
    records = sum(len(t.non_cond) for t in session.tracks.values())
    out = float(np.mean(np.diff(stamps))), session.pool.spilled, records, session.pool.nbytes / 2**20
    session.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="micro-synthetic", help="micro-synthetic or an official name (seeded)")
    parser.add_argument("--objects", type=int, default=8)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--small-mb", type=float, default=1.0, help="the budget under test")
    parser.add_argument("--large-mb", type=float, default=100_000, help="a budget that holds everything")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.model == "micro-synthetic":
        from sam2_plugins import load_model

        model = load_model("micro-synthetic", device=args.device)
    else:
        model = seeded_model(args.model, device=args.device, dtype="auto")
    size = 512
    frames = scene_frames(args.frames, size)
    clicks = grid_points(args.objects, size)
    print(f"machine: {machine()}")
    print(f"{args.model} at {model.image_size}, {args.objects} objects, {args.frames} frames")
    results = {}
    for mb in (args.large_mb, args.small_mb):
        sec, spilled, records, pool_mb = run(model, frames, clicks, mb, device)
        results[mb] = sec
        print(f"  memory_mb {mb:g}: {sec:.3f} s/frame, {spilled} records spilled of {records}, "
              f"pool {pool_mb:.1f} MB at the end")
    print(f"small budget / large budget: {results[args.small_mb] / results[args.large_mb]:.2f}x time per frame")


if __name__ == "__main__":
    main()

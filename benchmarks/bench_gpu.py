"""Propagation frames/s on a GPU: models x objects x torch.compile, bfloat16 at 1024.

Seeded weights of the official architectures (no download), synthetic 1024 x 1024 frames,
objects clicked on frame 0; steady state = frames 8.. (memory bank full). ``--write``
appends the table, with the machine, to benchmarks/RESULTS.md.

    python benchmarks/bench_gpu.py --models sam2.1-hiera-tiny sam2.1-hiera-base-plus --objects 1 64 --write
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import numpy as np
import torch

from common import grid_points, machine, scene_frames, seeded_model


def frames_per_second(model, frames, clicks, device) -> float:
    session = model.open_video(frames)
    for obj_id, (x, y) in enumerate(clicks, start=1):
        session.add_points(0, obj_id, [[x, y]], [1])
    stamps = []
    for _ in session.propagate():
        if device.type == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())
    steady = np.diff(stamps[7:])  # intervals ending on frames 8..
    return float(1.0 / steady.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["sam2.1-hiera-tiny", "sam2.1-hiera-base-plus"])
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--compile", choices=["off", "on", "both"], default="both")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--image-size", type=int, default=None, help="working resolution (default: the model's)")
    parser.add_argument("--write", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    device = torch.device(args.device)
    where = machine()
    print(f"machine: {where}")
    size = args.image_size or 1024
    frames = scene_frames(args.frames, size)
    compiles = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    rows = []
    for name in args.models:
        for compiled in compiles:
            model = seeded_model(name, device=args.device, dtype=args.dtype, image_size=args.image_size)
            if compiled:
                model.compile_parts()
            for n in args.objects:
                fps = frames_per_second(model, frames, grid_points(n, size), device)
                rows.append((name, n, compiled, fps))
                print(f"{name}, {n} object(s), compile {'on' if compiled else 'off'}: {fps:.1f} frames/s", flush=True)
    table = ["| model | objects | torch.compile | frames/s |", "|---|---|---|---|"]
    table += [f"| {m} | {n} | {'on' if c else 'off'} | {fps:.1f} |" for m, n, c, fps in rows]
    print("\n".join(table))
    if args.write:
        results = Path(__file__).with_name("RESULTS.md")
        head = (f"\n## {datetime.date.today()} — propagation frames/s (bench_gpu.py), {where}\n"
                f"`python benchmarks/bench_gpu.py {' '.join(sys.argv[1:])}` ({args.dtype}, {size}x{size}, "
                f"{args.frames} frames, steady state from frame 8)\n\n")
        with results.open("a") as fh:
            fh.write(head + "\n".join(table) + "\n")


if __name__ == "__main__":
    main()

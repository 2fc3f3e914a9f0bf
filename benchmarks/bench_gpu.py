"""Propagation frames/s on a GPU: models x objects x torch.compile, bfloat16 at 1024, and the peer.

Seeded weights of the official architectures (no download), synthetic 1024 x 1024 frames,
objects clicked on frame 0; steady state = frames 17.. (7 memories and 16 object pointers: no
shape changes any more, which matters to GPU kernels that plan per shape), each frame timed
until the GPU has finished it and its masks are on the host. ``--peer`` also times transformers'
Sam2VideoModel (hiera-tiny only: its default config; timed last) with the same weights, frames and clicks.
``--write`` appends the table, with the machine, to benchmarks/RESULTS.md; ``--out FILE``
writes it there instead (rows land as they are measured, so an interrupted run keeps them).

    python benchmarks/bench_gpu.py --models sam2.1-hiera-tiny sam2.1-hiera-base-plus --objects 1 64 --peer --write
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

from common import clicked_session, frame_stamps, grid_points, machine, scene_frames, seeded_model

TINY = "sam2.1-hiera-tiny"
STEADY = 17  # first steady-state frame


def frames_per_second(model, frames, clicks, device) -> float:
    stamps = frame_stamps(clicked_session(model, frames, clicks), device)
    steady = np.diff(stamps[STEADY - 1:])  # intervals ending on frames STEADY..
    return float(1.0 / steady.mean())


def peer_frames_per_second(model, frames, clicks, device, dtype) -> float:
    from bench_propagation import auto_pixels
    from peers import run_peer, transformers_tracker

    peer = transformers_tracker(model, dtype).to(device)
    pixels = torch.stack([auto_pixels(f, 1024) for f in frames])
    times, _ = run_peer(peer, pixels, frames.shape[1], frames.shape[2], clicks, dtype=dtype, device=device)
    return float(1.0 / np.mean(times[STEADY:]))


def profile_frames(model, frames, clicks, device, path: Path, profiled: int = 3) -> None:
    """torch.profiler over steady-state frames: busy GPU time per frame, top operators."""
    from torch.profiler import ProfilerActivity, profile

    frames_out = clicked_session(model, frames, clicks).propagate()
    for _ in range(STEADY):
        next(frames_out)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    start = time.perf_counter()
    with profile(activities=activities) as prof:
        for _ in range(profiled):
            next(frames_out)
            if device.type == "cuda":
                torch.cuda.synchronize()
    wall_ms = (time.perf_counter() - start) * 1e3 / profiled
    events = prof.key_averages()
    busy_ms = sum(getattr(e, "self_device_time_total", 0.0) for e in events) / 1e3 / profiled
    cpu_ms = sum(e.self_cpu_time_total for e in events) / 1e3 / profiled
    launches = sum(e.count for e in events if e.key.startswith("cudaLaunchKernel")) / profiled
    text = (f"{path.stem}, per frame: wall (profiled) {wall_ms:.1f} ms, GPU busy {busy_ms:.2f} ms, "
            f"host ops {cpu_ms:.1f} ms, {launches:.0f} kernel launches\n")
    for key in ("self_device_time_total", "self_cpu_time_total"):
        try:
            text += f"\nsorted by {key}:\n" + events.table(sort_by=key, row_limit=30) + "\n"
        except Exception as exc:  # noqa: BLE001 - a profiler column this torch lacks
            text += f"\n(no table by {key}: {exc})\n"
    path.write_text(text)
    print(text.splitlines()[0], flush=True)


class Table:
    """Rows printed and (optionally) appended to a markdown file as soon as they are measured."""

    def __init__(self, path: Path | None, head: str):
        self.path = path
        self.rows: list[tuple[str, int, str, float]] = []  # (model, objects, contender, frames/s)
        print(head + "\n| model | objects | contender | frames/s | peak GPU memory |", flush=True)
        if path:
            with path.open("a") as fh:
                fh.write(head + "\n| model | objects | contender | frames/s | peak GPU memory |\n|---|---|---|---|---|\n")

    def add(self, name: str, n: int, contender: str, fps: float, peak_gib: float) -> None:
        self.rows.append((name, n, contender, fps))
        row = f"| {name} | {n} | {contender} | {fps:.1f} | {peak_gib:.1f} GiB |"
        print(row, flush=True)
        if self.path:
            with self.path.open("a") as fh:
                fh.write(row + "\n")


def measure(table: Table, name: str, n: int, contender: str, fn, device) -> None:
    """One row; a failure is printed and the run goes on to the next row."""
    try:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        fps = fn()
        peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
        table.add(name, n, contender, fps, peak)
    except Exception:  # noqa: BLE001 - report and keep the other rows
        print(f"FAILED: {name}, {n} object(s), {contender}", flush=True)
        traceback.print_exc()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=[TINY, "sam2.1-hiera-base-plus"])
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--compile", choices=["off", "on", "both"], default="both")
    parser.add_argument("--compile-mode", default=None, help="torch.compile mode (e.g. max-autotune)")
    parser.add_argument("--peer", action="store_true", help="also time transformers' Sam2VideoModel (tiny)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--image-size", type=int, default=None, help="working resolution (default: the model's)")
    parser.add_argument("--write", action="store_true", help="append the table to benchmarks/RESULTS.md")
    parser.add_argument("--out", type=Path, default=None, help="append the table to this file instead")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="instead of timing, write torch.profiler summaries (uncompiled) to this folder")
    args = parser.parse_args()
    device = torch.device(args.device)
    where = machine()
    size = args.image_size or 1024
    frames = scene_frames(args.frames, size)
    out = args.out or (Path(__file__).with_name("RESULTS.md") if args.write else None)
    head = (f"\n## {datetime.date.today()} — propagation frames/s (bench_gpu.py), {where}\n"
            f"`python benchmarks/bench_gpu.py {' '.join(sys.argv[1:])}` ({args.dtype}, {size}x{size}, "
            f"{args.frames} frames, steady state from frame {STEADY})\n")
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        for name in args.models:
            model = seeded_model(name, device=args.device, dtype=args.dtype, image_size=args.image_size)
            for n in args.objects:
                profile_frames(model, frames, grid_points(n, size), device, args.profile / f"profile_{name}_{n}.txt")
        return
    table = Table(out, head)
    compiles = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    runs = [(name, compiled) for compiled in compiles for name in args.models]  # uncompiled rows first
    for name, compiled in runs:
        model = seeded_model(name, device=args.device, dtype=args.dtype, image_size=args.image_size)
        contender = f"ours, compile {args.compile_mode or 'default'}" if compiled else "ours"
        if compiled:
            model.compile_parts(mode=args.compile_mode)
        for n in args.objects:
            measure(table, name, n, contender,
                    lambda: frames_per_second(model, frames, grid_points(n, size), device), device)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if args.peer and size == 1024:  # last: the peer may be slow with many objects
        model = seeded_model(TINY, device=args.device, dtype=args.dtype)
        dtype = getattr(torch, args.dtype)
        for n in args.objects:
            measure(table, TINY, n, f"transformers Sam2VideoModel {args.dtype}",
                    lambda: peer_frames_per_second(model, frames, grid_points(n, size), device, dtype), device)
    ours = {(name, n): fps for name, n, contender, fps in table.rows if contender == "ours"}
    for name, n, contender, fps in table.rows:
        if contender.startswith("transformers") and (name, n) in ours:
            print(f"{name}, {n} object(s): ours / transformers = {ours[(name, n)] / fps:.1f}x frames/s")


if __name__ == "__main__":
    main()

"""Time of the heavy parts of a tracked frame, hiera-tiny at 1024, in the model's auto dtype.

Default: image encoder on one 1024 x 1024 frame; memory attention (4 layers) of one object
against a full memory bank (7 memories of 64 x 64 tokens + 64 pointer tokens). Random inputs,
seeded weights; mean of 2 runs after a warm-up.

``--objects N``: instead, propagate N clicked objects through 10 synthetic frames and split the
steady-state frame (frame 9, full memory bank) by model part (forward hooks).

    python benchmarks/bench_parts.py
    python benchmarks/bench_parts.py --objects 1 16
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import torch

from common import grid_points, machine, mean_seconds, scene_frames, seeded_model

PARTS = ("image_encoder", "memory_attention", "sam_mask_decoder", "memory_encoder")


def isolated_parts() -> None:
    model = seeded_model(dtype="auto")
    pixels = torch.randn(1, 3, 1024, 1024)
    tokens, memories = 64 * 64, 7 * 64 * 64 + 64
    curr, curr_pos = torch.randn(1, tokens, 256), torch.randn(1, tokens, 256)
    memory, memory_pos = torch.randn(1, memories, 64), torch.randn(1, memories, 64)
    with torch.inference_mode(), model.precision():
        encoder = mean_seconds(lambda: model.image_encoder(pixels))
        attention = mean_seconds(lambda: model.memory_attention(curr, curr_pos, memory, memory_pos, 64))
    print(f"dtype {model.compute_dtype}")
    print(f"image encoder:    {encoder:.2f} s")
    print(f"memory attention: {attention:.2f} s (1 object, 7 memories)")


def tracked_frame_parts(num_objects: int) -> None:
    """Seconds per model part on the steady-state frame of an N-object propagation."""
    model = seeded_model(dtype="auto")
    spent: dict[str, float] = defaultdict(float)
    started: dict[str, float] = {}
    for name in PARTS:
        part = getattr(model, name)
        part.register_forward_pre_hook(lambda _m, _a, name=name: started.__setitem__(name, time.perf_counter()))
        part.register_forward_hook(
            lambda _m, _a, _o, name=name: spent.__setitem__(name, spent[name] + time.perf_counter() - started[name]))
    session = model.open_video(scene_frames(10, 512))
    for obj_id, (x, y) in enumerate(grid_points(num_objects, 512), start=1):
        session.add_points(0, obj_id, [[x, y]], [1])
    frames = iter(session.propagate())
    for _ in range(9):
        next(frames)
    spent.clear()
    start = time.perf_counter()
    next(frames)
    total = time.perf_counter() - start
    parts = ", ".join(f"{name} {spent[name]:.2f}" for name in PARTS)
    print(f"{num_objects:3d} object(s): frame {total:.2f} s = {parts}, rest {total - sum(spent.values()):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, nargs="+", help="split a tracked frame with this many objects")
    args = parser.parse_args()
    print(f"machine: {machine()}, torch threads {torch.get_num_threads()}")
    if not args.objects:
        isolated_parts()
        return
    for n in args.objects:
        tracked_frame_parts(n)


if __name__ == "__main__":
    main()

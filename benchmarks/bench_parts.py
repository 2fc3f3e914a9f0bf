"""Time of the heavy parts of a tracked frame, hiera-tiny at 1024, in the model's auto dtype
(or each of ``--dtype auto float32 bfloat16`` in turn).

Default: image encoder on one 1024 x 1024 frame (channels-last, as the engine's frames); memory
attention (4 layers) of one object against a full memory bank (7 memories of 64 x 64 tokens + 64
pointer tokens). Random inputs, seeded weights; mean of 2 runs after a warm-up.

``--objects N``: instead, propagate N clicked objects through 10 synthetic frames and split the
steady-state frame (frame 9, full memory bank) by model part (forward hooks).

``--chunk-rows R [R ...]``: memory attention with R queries per chunk of its CPU bfloat16 path
(the engine's rule first, as the peer), in alternating rounds; prints each one's ratio to the rule.

    python benchmarks/bench_parts.py
    python benchmarks/bench_parts.py --objects 1 16
    python benchmarks/bench_parts.py --chunk-rows 128 291 512
    python benchmarks/bench_parts.py --dtype float32 bfloat16
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import torch

from sam2_plugins.model import common as model_common
from common import grid_points, machine, mean_seconds, scene_frames, seeded_model

PARTS = ("image_encoder", "memory_attention", "sam_mask_decoder", "memory_encoder")


MEMORY_TOKENS = 7 * 64 * 64 + 64  # a full bank: 7 memories of 64 x 64 tokens + 64 pointer tokens


def memory_attention_inputs() -> tuple[torch.Tensor, ...]:
    """Random (current, current_pos, memory, memory_pos) for one object against a full bank."""
    tokens = 64 * 64
    return (torch.randn(1, tokens, 256), torch.randn(1, tokens, 256),
            torch.randn(1, MEMORY_TOKENS, 64), torch.randn(1, MEMORY_TOKENS, 64))


def isolated_parts(dtype: str = "auto") -> None:
    model = seeded_model(dtype=dtype)
    # laid out as the engine's frames are (channels-last, from H x W x 3 images): a plain NCHW tensor
    # takes other, slower paths through the patch embedding and the neck
    pixels = torch.randn(1, 3, 1024, 1024).contiguous(memory_format=torch.channels_last)
    inputs = memory_attention_inputs()
    with torch.inference_mode(), model.precision():
        encoder = mean_seconds(lambda: model.network.image_encoder(pixels))
        attention = mean_seconds(lambda: model.network.memory_attention(*inputs, 64))
    print(f"dtype {model.compute_dtype}")
    print(f"image encoder:    {encoder:.2f} s")
    print(f"memory attention: {attention:.2f} s (1 object, 7 memories)")


def chunk_rows(rows: list[int], rounds: int = 3) -> None:
    """Memory attention (1 object, 7 memories) with fixed rows per query chunk against the engine's rule."""
    model = seeded_model(dtype="auto")
    inputs = memory_attention_inputs()
    rule = model_common.rows_per_chunk
    choices = {f"rule ({rule(MEMORY_TOKENS, 2)} rows)": rule, **{f"{r} rows": (lambda _k, _e, r=r: r) for r in rows}}
    times: dict[str, list[float]] = defaultdict(list)
    print(f"dtype {model.compute_dtype} (the rows matter on the CPU explicit path: bfloat16 without AMX, or float32)")
    with torch.inference_mode(), model.precision():
        for _ in range(rounds):
            for name, choice in choices.items():
                model_common.rows_per_chunk = choice
                times[name].append(mean_seconds(lambda: model.network.memory_attention(*inputs, 64), repeats=1))
    model_common.rows_per_chunk = rule
    base = min(times[next(iter(choices))])
    for name, t in times.items():
        print(f"memory attention, {name:16s} best {min(t):.3f} s  ({base / min(t):.2f}x the rule's speed)")


def tracked_frame_parts(num_objects: int, dtype: str = "auto") -> None:
    """Seconds per model part on the steady-state frame of an N-object propagation."""
    model = seeded_model(dtype=dtype)
    spent: dict[str, float] = defaultdict(float)
    started: dict[str, float] = {}
    for name in PARTS:
        part = getattr(model.network, name)
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
    print(f"{model.compute_dtype}, {num_objects:3d} object(s): frame {total:.2f} s = {parts}, rest {total - sum(spent.values()):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, nargs="+", help="split a tracked frame with this many objects")
    parser.add_argument("--chunk-rows", type=int, nargs="+", help="memory attention with these query chunks")
    parser.add_argument("--dtype", nargs="+", default=["auto"],
                        help="compute dtypes to time in turn (auto, float32, bfloat16)")
    args = parser.parse_args()
    print(f"machine: {machine()}, torch threads {torch.get_num_threads()}")
    if args.chunk_rows:
        chunk_rows(args.chunk_rows)
        return
    for dtype in args.dtype:
        if not args.objects:
            isolated_parts(dtype)
        for n in args.objects or ():
            tracked_frame_parts(n, dtype)


if __name__ == "__main__":
    main()

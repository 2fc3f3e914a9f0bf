"""Propagation speed, SAM 2.1 hiera-tiny at 1024: ours against transformers' Sam2VideoModel.

Both get the same seeded weights (converted key by key), the same frames (our preprocessing)
and the same clicks. Steady state: the mean time of frames 8.. of a propagation, when the
memory bank is full (7 memories + pointers). Denormals are flushed for every contender.

    python benchmarks/bench_propagation.py --objects 1 16 --frames 12

Ours runs in the dtype that ``dtype="auto"`` picks on this machine and, unless
``--skip-other-dtype``, in the other one too (float32 or bfloat16): the ratio shows whether
the automatic choice is the faster one here.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from common import grid_points, machine, scene_frames, seeded_model
from peers import run_peer, transformers_tracker


def run_ours(model, frames, clicks):
    import time

    session = model.open_video(frames)
    for obj_id, (x, y) in enumerate(clicks, start=1):
        session.add_points(0, obj_id, [[x, y]], [1])
    times, masks = [], {}
    start = time.perf_counter()
    for result in session.propagate():
        now = time.perf_counter()
        times.append(now - start)
        start = now
        masks[result.frame_index] = result.masks
    return times, masks


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def agreement(a: dict, b: dict, n: int) -> float:
    """Mean Jaccard of two runs' masks over the frames of `b` and the n objects."""
    return float(np.mean([jaccard(a[f][k], b[f][k]) for f in b for k in range(n)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--size", type=int, default=512, help="side of the synthetic frames (resized to 1024)")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--peer-objects-max", type=int, default=16)
    parser.add_argument("--skip-other-dtype", "--skip-fp32", dest="skip_other", action="store_true",
                        help="time ours in the auto dtype only (by default also in the other one: float32 "
                             "where auto is bfloat16, bfloat16 where auto is float32)")
    parser.add_argument("--low-res", type=int, default=None,
                        help="also time ours at this working resolution (e.g. 512) and compare its masks")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"torch threads: {torch.get_num_threads()}, denormals flushed")
    frames = scene_frames(args.frames, args.size)
    auto = seeded_model(dtype="auto")
    other = seeded_model(dtype="bfloat16" if auto.compute_dtype == torch.float32 else "float32")
    fp32 = auto if auto.compute_dtype == torch.float32 else other
    low = seeded_model(dtype="auto", image_size=args.low_res) if args.low_res else None
    peer = None if args.no_peer else transformers_tracker(fp32)
    steady = slice(8, None)
    for n in args.objects:
        clicks = grid_points(n, args.size)
        t_auto, m_auto = run_ours(auto, frames, clicks)
        ours_auto = np.mean(t_auto[steady])
        print(f"\n{n} object(s), steady state (frames 8-{args.frames - 1}):")
        print(f"  ours, dtype auto ({auto.compute_dtype}): {ours_auto:.2f} s/frame")
        m_fp32 = m_auto if auto is fp32 else None  # our float32 masks, where timed
        if not args.skip_other:
            t_other, m_other = run_ours(other, frames, clicks)
            ours_other = np.mean(t_other[steady])
            if other is fp32:
                m_fp32 = m_other
            print(f"  ours, {other.compute_dtype}: {ours_other:.2f} s/frame "
                  f"(auto {ours_other / ours_auto:.2f}x as fast)")
            print(f"  mask agreement auto vs {other.compute_dtype}: Jaccard {agreement(m_auto, m_other, n):.4f}")
        if args.low_res:
            t_low, m_low = run_ours(low, frames, clicks)
            ours_low = np.mean(t_low[steady])
            agree_low = agreement(m_auto, m_low, n)
            print(f"  ours at {args.low_res} ({low.compute_dtype}): {ours_low:.2f} s/frame "
                  f"({ours_auto / ours_low:.2f}x faster than at {auto.image_size}; "
                  f"mask agreement with it: Jaccard {agree_low:.4f})")
        if peer is not None and n <= args.peer_objects_max:
            pixels = torch.stack([auto_pixels(frames[i], 1024) for i in range(len(frames))])
            t_peer, m_peer = run_peer(peer, pixels, args.size, args.size, clicks)
            peer_s = np.mean(t_peer[steady])
            print(f"  transformers Sam2VideoModel fp32: {peer_s:.2f} s/frame")
            print(f"  ratio peer / ours(auto): {peer_s / ours_auto:.2f}x")
            if not args.skip_other and other is fp32:
                print(f"  ratio peer / ours(fp32): {peer_s / ours_other:.2f}x")
            ours_masks, name = (m_auto, "auto") if m_fp32 is None else (m_fp32, "fp32")
            print(f"  mask agreement ours {name} vs peer: Jaccard {agreement(ours_masks, m_peer, n):.4f}")


def auto_pixels(frame: np.ndarray, size: int) -> torch.Tensor:
    from sam2_plugins.preprocess import to_model_input

    return to_model_input(frame.astype(np.float32) / 255, size)[0]


if __name__ == "__main__":
    main()

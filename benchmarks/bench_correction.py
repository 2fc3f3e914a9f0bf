"""A correction on the middle frame, then re-propagation, against the first propagation.

Faithful re-propagation recomputes every tracked frame (as Meta's predictor does) but takes
image features from the cache; ``onward_only`` re-tracks from the corrected frame onward.

    python benchmarks/bench_correction.py --frames 16
"""

from __future__ import annotations

import argparse
import time

from common import grid_points, machine, scene_frames, seeded_model


def timed(iterator) -> float:
    start = time.perf_counter()
    for _ in iterator:
        pass
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--model", default="sam2.1-hiera-tiny")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    frames = scene_frames(args.frames, args.size)
    model = seeded_model(args.model, dtype="auto")
    (x, y), mid = grid_points(1, args.size)[0], args.frames // 2
    results = {}
    for mode in ("faithful", "onward_only"):
        session = model.open_video(frames)  # default budgets
        session.add_points(0, 1, [[x, y]], [1])
        first = timed(session.propagate_all())
        session.add_points(mid, 1, [[x + 10, y]], [1])
        again = timed(session.propagate_all(onward_only=(mode == "onward_only")))
        results[mode] = (first, again)
        print(f"{mode:12s} first pass {first:.1f} s, after a correction on frame {mid}: {again:.1f} s "
              f"-> {first / again:.2f}x faster (features cached: {session.feature_cache.hits} hits)")


if __name__ == "__main__":
    main()

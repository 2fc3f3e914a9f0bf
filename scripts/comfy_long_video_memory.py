"""Memory of the "SAM2 Track Video" node's logic on a long video, and what 1,000 frames would take.

    python scripts/comfy_long_video_memory.py --frames 40 --height 720 --width 1280 --structure sam2.1-hiera-tiny

Builds the chosen official model structure with random weights (no download: memory does not depend on
the weights' values), makes an IMAGE batch of float frames, tracks one box prompt through it with the
node's function, and logs the process's resident memory every few frames. It prints what each part
takes: the input batch (ComfyUI holds it anyway), the outputs the node allocates (combined MASK,
preview IMAGE), and everything else (model, session caches, working memory), which should stay flat
with the frame count; then the total projected for ``--project`` frames of the same size.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import torch

from sam2_plugins import Sam2, build_model
from sam2_plugins.config import official_config

MB = 2**20


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / MB


def main() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from comfy_nodes.prompts import ObjectPrompt
    from comfy_nodes.video import PREVIEW_SIZES, track_video

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--structure", default="sam2.1-hiera-tiny")
    p.add_argument("--preview", default="half", choices=list(PREVIEW_SIZES))
    p.add_argument("--project", type=int, default=1000, help="frames to project the total for")
    args = p.parse_args()

    torch.manual_seed(0)
    model = Sam2(build_model(official_config(args.structure)).eval())
    start_rss = rss_mb()
    t, h, w = args.frames, args.height, args.width
    images = torch.rand(t, h, w, 3)
    images[:, h // 3: h // 2, w // 3: w // 2] = torch.tensor([0.9, 0.2, 0.1])
    input_mb = images.numel() * 4 / MB
    prompt = [ObjectPrompt(1, 0, box=(w // 3, h // 3, w // 2, h // 2))]
    base = rss_mb()
    log = []
    t0 = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done % max(1, total // 20) == 0 or done == total:
            log.append({"frame": done, "rss_mb": round(rss_mb(), 1), "s": round(time.perf_counter() - t0, 1)})

    combined, _, shown = track_video(model, images, prompt, preview=args.preview, progress=progress)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out_mb = (combined.numel() + shown.numel()) * 4 / MB
    other = peak - base - out_mb  # model and session beyond the input and the outputs
    per_frame_in, per_frame_out = input_mb / t, out_mb / t
    projected = start_rss + args.project * (per_frame_in + per_frame_out) + max(other, 0)
    print(json.dumps({
        "frames": t, "size": [w, h], "structure": args.structure, "preview": args.preview,
        "process_before_input_mb": round(start_rss), "input_mb": round(input_mb), "outputs_mb": round(out_mb),
        "rest_peak_mb": round(other), "log": log,
        f"projected_{args.project}_frames_gb": round(projected / 1024, 1),
    }, indent=1))


if __name__ == "__main__":
    main()

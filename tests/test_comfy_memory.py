"""Tracking a long IMAGE batch keeps memory bounded: frames are read one at a time from the batch (no copy
of the batch, whole or converted), and beyond the outputs the node allocates, what tracking holds does not
grow with the video's length (features in a bounded cache, memories in a bounded pool)."""

import json
import subprocess
import sys
import textwrap

import pytest

CODE = textwrap.dedent("""
    import json, resource
    import torch
    from comfy_nodes.prompts import ObjectPrompt
    from comfy_nodes.video import track_video
    from sam2_plugins import load_model

    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20

    model = load_model("micro-synthetic", device="cpu", dtype="float32")
    T, H, W = 120, 512, 512
    images = torch.rand(T, H, W, 3, generator=torch.Generator().manual_seed(0))  # 360 MB, float 0..1
    images[:, 200:280, 200:280] = torch.tensor([0.9, 0.2, 0.1])  # something to track
    prompt = [ObjectPrompt(1, 0, box=(200, 200, 280, 280))]
    track_video(model, images[:6], prompt, preview="off")  # warm-up: allocator pools, first-call caches
    base = rss_mb()
    with open("/proc/self/clear_refs", "w") as f:  # the peak (VmHWM) from here on, not the set-up's
        f.write("5")
    combined, tracks, _ = track_video(model, images, prompt, preview="off", feature_cache_mb=64)
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024
    print(json.dumps({"base_mb": base, "peak_mb": peak, "input_mb": images.numel() * 4 / 2**20,
                      "output_mb": combined.numel() * 4 / 2**20, "frames_done": len(tracks.frames_done),
                      "tracked_pixels_last": float(combined[-1].sum())}))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_long_batch_memory_is_bounded(tmp_path):
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=500, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["frames_done"] == 120 and got["tracked_pixels_last"] > 0.5 * 80 * 80
    growth = got["peak_mb"] - got["base_mb"]
    # the combined MASK (120 MB) + the feature cache (64 MB) + the memory pool (64 MB) + working room;
    # a copy of the batch would add its 360 MB on top
    allowed = got["output_mb"] + 64 + 64 + 120
    assert growth < allowed, got
    assert allowed < got["input_mb"] + got["output_mb"]

"""The fast bfloat16 path agrees with float32 (the default on CUDA and on CPUs where bf16 is faster)."""

import sys
from pathlib import Path

import numpy as np

from conftest import MICRO_CONFIG, MICRO_WEIGHTS
from sam2_plugins import load_model
from sam2_plugins.api import pick_dtype
from sam2_plugins.hardware import bf16_beats_fp32, cpu_prefers_bf16


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return 1.0 if union == 0 else (a & b).sum() / union


def _track(model, reference):
    s = model.open_video(reference["frames"])
    s.add_points(0, 1, [[35, 30]], [1])
    s.add_box(0, 2, [80, 50, 110, 80])
    s.add_mask(9, 3, reference["inputs/last_frame_disc2_mask"])
    return {r.frame_index: r.masks for r in s.propagate_all()}


def test_bf16_masks_agree_with_fp32_on_the_reference_clip(reference):
    fp32 = load_model(MICRO_WEIGHTS, config=MICRO_CONFIG, device="cpu", dtype="float32")
    bf16 = load_model(MICRO_WEIGHTS, config=MICRO_CONFIG, device="cpu", dtype="bfloat16")
    a, b = _track(fp32, reference), _track(bf16, reference)
    scores = [_jaccard(a[f][k], b[f][k]) for f in a for k in range(3)]
    assert np.mean(scores) >= 0.98, scores
    image_a = fp32.predict_image(reference["frames"][0], points=[[35, 30]], labels=[1]).masks
    image_b = bf16.predict_image(reference["frames"][0], points=[[35, 30]], labels=[1]).masks
    assert _jaccard(image_a, image_b) >= 0.98


def test_auto_dtype_rules(monkeypatch):
    import torch

    from sam2_plugins import api

    assert pick_dtype(torch.device("cuda"), "auto") == torch.bfloat16
    expected = torch.bfloat16 if cpu_prefers_bf16() else torch.float32
    assert pick_dtype(torch.device("cpu"), "auto") == expected
    for prefers, dtype in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(api, "cpu_prefers_bf16", lambda prefers=prefers: prefers)
        assert pick_dtype(torch.device("cpu"), "auto") == dtype
        assert pick_dtype(torch.device("cpu"), "float32") == torch.float32
        assert pick_dtype(torch.device("cpu"), "bf16") == torch.bfloat16


def test_bf16_is_chosen_only_on_cpus_where_it_beats_fp32():
    """Issue 6, stop 30: on an Intel Xeon whose AMX a hypervisor hides, AVX512-BF16 tracked at 0.68x
    the speed of float32, slower than the float32 peer; AMX and AMD's AVX512-BF16 run bf16 2-5x faster."""
    base = {"avx512f", "avx512bw", "avx512_vnni"}
    assert bf16_beats_fp32(base | {"avx512_bf16", "amx_bf16", "amx_tile"}, "GenuineIntel")
    assert bf16_beats_fp32(base | {"avx512_bf16"}, "AuthenticAMD")
    assert not bf16_beats_fp32(base | {"avx512_bf16", "avx512_fp16"}, "GenuineIntel")
    assert not bf16_beats_fp32(base, "AuthenticAMD")
    assert not bf16_beats_fp32({"avx2", "fma"}, "GenuineIntel")
    assert not bf16_beats_fp32(frozenset(), "")


def test_off_linux_the_choice_comes_from_pytorchs_cpu_probe(monkeypatch):
    """Without /proc/cpuinfo (Windows, macOS), flags and vendor come from torch.cpu.get_capabilities
    and the platform's processor string, and the same rule applies."""
    from sam2_plugins import hardware

    def clear():
        for cached in (hardware.cpu_flags, hardware.cpu_vendor):
            cached.cache_clear()

    probes = [  # (PyTorch's probe, platform.processor(), bf16 expected)
        ({"amx_bf16": True, "avx512_bf16": True, "cpu_name": "Intel Xeon w5-3435X"}, "", True),
        ({"amx_bf16": False, "avx512_bf16": True, "cpu_name": "Intel Xeon"},
         "Intel64 Family 6 Model 207 Stepping 2, GenuineIntel", False),
        ({"amx_bf16": False, "avx512_bf16": True, "cpu_name": "AMD Ryzen 9 7950X"},
         "AMD64 Family 25 Model 97 Stepping 2, AuthenticAMD", True),
        ({"amx_bf16": False, "avx512_bf16": False, "avx2": True, "cpu_name": "AMD Ryzen 7 5800X"}, "", False),
        ({}, "", False),
    ]
    monkeypatch.setattr(hardware, "_cpuinfo", lambda: {})
    try:
        for capabilities, processor, expected in probes:
            clear()
            monkeypatch.setattr(hardware, "_torch_capabilities", lambda c=capabilities: c)
            monkeypatch.setattr(hardware.platform, "processor", lambda p=processor: p)
            assert hardware.cpu_prefers_bf16() is expected, capabilities
    finally:
        monkeypatch.undo()
        clear()


def test_bf16_masks_agree_with_fp32_on_the_small_models_synthetic_videos(tmp_path):
    """`evaluate --bf16-agreement 6`, the figure issue 6 asks for: the shipped model, one click per
    object, bfloat16 against float32 tracking on 6 synthetic scenes and 6 time-lapses (12 frames each).

    The mean over the set is what is asked for; a single video is a noisy sample of it. Scene
    10,000,123 alone gives 0.979 with the current weights: one object that both paths half lose
    behind another (J against the truth 0.25-0.5 on frames 7-11), where they differ by a few pixels.
    """
    import json

    sys.path.insert(0, str(Path(__file__).parents[1] / "recipes"))
    from evaluate import main

    out = tmp_path / "results.json"
    # agreement seeds start at --seed + 120: held-out seeds 10_000_120 to 10_000_125
    assert main(["--cells", "0", "--scenes", "0", "--bf16-agreement", "6", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["device"] == "cpu"
    # Jaccard of each object's whole track (pixels of all frames together): frames where the
    # model has lost an object down to a few pixels would otherwise score 0 or 1 at random
    for kind in ("scenes", "cells"):
        assert results["bf16_agreement"][kind]["mean"] >= 0.98, results["bf16_agreement"]

"""The ComfyUI model loader's choices and loading, without ComfyUI: shipped, official and user files."""

import shutil
import subprocess
import sys
import textwrap
from importlib import resources

import torch

from comfy_nodes.models import load_sam2, model_choices
from sam2_plugins.config import OFFICIAL_MODEL_NAMES

CPU = torch.device("cpu")


def test_choices_list_shipped_official_then_user_files():
    files = ["sam2.1_hiera_tiny.pt", "sub/mine.safetensors", "sub/mine.config.json"]
    choices = model_choices(files)
    assert choices[0] == "micro-synthetic"
    assert choices[1:1 + len(OFFICIAL_MODEL_NAMES)] == list(OFFICIAL_MODEL_NAMES)
    assert choices[1 + len(OFFICIAL_MODEL_NAMES):] == ["sub/mine.safetensors"]  # the official file is its name


def test_precision_choices():
    assert load_sam2("micro-synthetic", device=CPU, precision="fp32").compute_dtype == torch.float32
    assert load_sam2("micro-synthetic", device=CPU, precision="bf16").compute_dtype == torch.bfloat16
    assert load_sam2("micro-synthetic", device=CPU, precision="fp16").compute_dtype == torch.float32  # no CPU fp16


def test_a_file_from_the_model_folder_loads_with_its_config(tmp_path):
    weights = resources.files("sam2_plugins").joinpath("weights")
    shutil.copy(str(weights.joinpath("micro-synthetic.safetensors")), tmp_path / "tuned.safetensors")
    shutil.copy(str(weights.joinpath("micro-synthetic.config.json")), tmp_path / "tuned.config.json")
    model = load_sam2("tuned.safetensors", device=CPU, file_path=str(tmp_path / "tuned.safetensors"))
    assert model.weights == str(tmp_path / "tuned.safetensors") and model.image_size == 256


def test_official_name_offline_says_where_to_put_the_file(tmp_path):
    # a fresh interpreter with the hub offline: no network wait, and the message names ComfyUI's folder
    code = textwrap.dedent(f"""
        import torch
        from comfy_nodes.models import load_sam2
        from sam2_plugins import CheckpointError
        try:
            load_sam2("sam2.1-hiera-tiny", device=torch.device("cpu"), folders=[{str(tmp_path)!r}])
        except CheckpointError as err:
            print(err)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert f"sam2.1_hiera_tiny.pt from the Hugging Face hub repository facebook/sam2.1-hiera-tiny at " \
           f"{tmp_path / 'sam2.1_hiera_tiny.pt'}" in out.stdout, out.stdout + out.stderr

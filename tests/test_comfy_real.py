"""The pack in a real ComfyUI (scripts/check_comfyui.py): its nodes, every API-format example workflow through
the HTTP API with its outputs checked, bad inputs, the interrupt. ComfyUI is not on PyPI, so this runs only
where SAM2_PLUGINS_COMFYUI names a ComfyUI folder (COMFYUI_PYTHON: its Python; COMFYUI_PRELOAD: a file to
import first); see docs/comfyui.md."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not os.environ.get("SAM2_PLUGINS_COMFYUI"), reason="no ComfyUI given (SAM2_PLUGINS_COMFYUI)")
def test_pack_in_a_real_comfyui(tmp_path):
    report = tmp_path / "report.json"
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_comfyui.py"), "--port", "8196",
                          "--json", str(report)], capture_output=True, text=True, timeout=900)
    assert report.is_file(), out.stdout[-3000:] + out.stderr[-3000:]
    got = json.loads(report.read_text())
    assert got["all_ok"], json.dumps(got, indent=1)[:6000]
    assert set(got["workflows"]) >= {"track_and_recolor", "remove_background", "points_editor_json",
                                     "segment_everything"}

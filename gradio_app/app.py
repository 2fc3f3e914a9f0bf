"""Hugging Face Space entry (``app_file``), also ``python gradio_app/app.py`` from a checkout."""

import sys
from pathlib import Path

try:
    import gradio_app  # noqa: F401  (installed with sam2-plugins)
except ImportError:  # run from a source checkout: the package is this file's folder
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gradio_app.launch import launch

if __name__ == "__main__":
    launch([])

"""The browser app (a Hugging Face Space) over sam2-plugins' engine: click objects in a video, track
them, apply effects, download masks. ``python -m gradio_app`` runs it.

Importing this package does not import gradio; :func:`build_demo` does, when called.
"""


def build_demo(limits=None):
    """The app's ``gr.Blocks``, not launched (see :mod:`gradio_app.ui`)."""
    from .ui import build_demo as _build

    return _build(limits)


__all__ = ["build_demo"]

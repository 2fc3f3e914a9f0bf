"""Start the app: ``python -m gradio_app`` (local) or ``app.py`` (a Hugging Face Space)."""

from __future__ import annotations

import argparse
import os

from .limits import Limits


def launch(argv: list[str] | None = None) -> None:
    """Build the page, load the default model once, and serve it."""
    parser = argparse.ArgumentParser(prog="python -m gradio_app", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true", help="a public gradio.live link")
    args = parser.parse_args(argv)

    import gradio as gr

    from .engine import DEFAULT_MODEL, get_model
    from .ui import CSS, build_demo

    limits = Limits.from_env()
    get_model(DEFAULT_MODEL)  # once per process, before the first visitor
    demo = build_demo(limits)
    demo.queue(default_concurrency_limit=limits.concurrency)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share,
                max_file_size=f"{limits.max_upload_mb:g}mb", theme=gr.themes.Soft(), css=CSS,
                footer_links=["gradio", "settings"], show_error=True)

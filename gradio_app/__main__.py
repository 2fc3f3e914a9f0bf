"""``python -m gradio_app [--port P]``: the app on this machine."""

from .launch import launch

launch()

"""Gradio adapter for sam2-plugins (planned): the browser app / Space over the core's session API and exports.

Importing this package must not import gradio (build the Blocks inside a function).
"""

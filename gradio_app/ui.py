"""The page: where everything sits and which handler each control calls (see :mod:`.handlers`)."""

from __future__ import annotations

import types

import gradio as gr

from . import handlers as h
from .downloads import EFFECT_LABELS
from .engine import DEFAULT_MODEL, MODEL_CHOICES
from .limits import Limits
from .workspace import close_workspace, end_session

CSS = """
#frame img { cursor: crosshair; }
#status { min-height: 2.5em; }
"""

INTRO = """# SAM 2: click objects in a video, track them, download the masks
1. **Load the sample** (or upload a short video or an image).
2. **Click on an object** in the frame: a positive click adds, a negative click removes. Use **New object**
   for the next one; any frame works (move the slider).
3. **Track**, then pick an **effect** and **download** the masks, the label stack and the video.
"""


def _bind(fn, limits: Limits):
    """`fn` with `limits` as its first argument. A bound method keeps the rest of the signature, which
    Gradio reads to pass ``gr.Request``, ``gr.SelectData`` and ``gr.Progress`` (a partial hides it)."""
    return types.MethodType(fn, limits)


def build_demo(limits: Limits | None = None) -> gr.Blocks:
    """The app's Blocks (not launched). Importing this package does not import gradio; this does."""
    limits = limits or Limits.from_env()
    engine_work = dict(concurrency_id="engine", concurrency_limit=limits.concurrency)
    with gr.Blocks(title="SAM 2: track objects in a video", delete_cache=(600, 3600)) as demo:
        state = gr.State(None, delete_callback=close_workspace)
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1, min_width=240):
                sample_btn = gr.Button("Load the sample video", variant="primary", elem_id="sample")
                upload = gr.File(label="…or upload a video or an image", file_types=["video", "image"],
                                 height=130, elem_id="upload")
                gr.Markdown(limits.describe(), elem_id="limits")
                model = gr.Dropdown(list(MODEL_CHOICES), value=DEFAULT_MODEL, label="Model", elem_id="model",
                                    info="micro-synthetic is built in (synthetic scenes only); the SAM 2 / 2.1 "
                                         "checkpoints download from the Hugging Face hub when reachable.")
            with gr.Column(scale=3):
                frame_img = gr.Image(label="Frame: click on an object", interactive=False, type="numpy",
                                     format="png", height=440, elem_id="frame", buttons=[])
                slider = gr.Slider(0, 1, value=0, step=1, label="Frame", interactive=False, elem_id="slider")
                status = gr.Markdown("Start by loading the sample video.", elem_id="status")
            with gr.Column(scale=1, min_width=240):
                mode = gr.Radio(list(h.MODES), value=h.MODES[0], label="What a click does", elem_id="mode")
                objects = gr.Radio(choices=[], label="Objects (the selected one gets the clicks)",
                                   elem_id="objects")
                new_btn = gr.Button("New object", elem_id="new-object")
                with gr.Row():
                    remove_btn = gr.Button("Remove object", elem_id="remove-object", size="sm")
                    clear_btn = gr.Button("Clear clicks here", elem_id="clear", size="sm")
                name_box = gr.Textbox(label="Rename the selected object", placeholder="e.g. red star",
                                      elem_id="name")
                rename_btn = gr.Button("Rename", elem_id="rename", size="sm")
                everything_btn = gr.Button("Segment everything on this frame", elem_id="everything")
        with gr.Row():
            with gr.Column(scale=1, min_width=240):
                direction = gr.Radio(list(h.DIRECTIONS), value=h.DIRECTIONS[0], label="Track",
                                     elem_id="direction")
                with gr.Row():
                    track_btn = gr.Button("Track", variant="primary", elem_id="track")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="stop")
                effect = gr.Dropdown(list(EFFECT_LABELS), value="Coloured overlay", label="Effect",
                                     elem_id="effect")
            with gr.Column(scale=4):
                out_video = gr.Video(label="Result", format="mp4", interactive=False, height=440, elem_id="out",
                                     buttons=["download"])
                files = gr.File(label="Downloads: masks (PNG per object and frame, zip), label stack (TIFF), video",
                                file_count="multiple", interactive=False, elem_id="downloads")
        summary = gr.JSON(visible=False)
        # clicks by coordinates, for API clients (the page uses the image's select event)
        click_x, click_y = gr.Number(visible=False), gr.Number(visible=False)
        click_btn = gr.Button(visible=False)

        view_out = [state, frame_img, slider, objects, status, summary]
        sample_btn.click(_bind(h.load_sample, limits), [state], view_out + [out_video, files],
                         api_name="load_sample", **engine_work)
        upload.upload(_bind(h.upload, limits), [upload, state], view_out + [out_video, files],
                      api_name="upload", **engine_work)
        model.input(h.change_model, [model, state], [state, model, status], api_name="model", **engine_work)
        frame_img.select(_bind(h.select_click, limits), [slider, mode, state], view_out, api_visibility="private",
                         trigger_mode="multiple", **engine_work)
        click_btn.click(_bind(h.click, limits), [slider, click_x, click_y, mode, state], view_out,
                        api_name="click", **engine_work)
        slider.input(h.show_frame, [slider, state], view_out, api_name="frame",
                     trigger_mode="always_last")
        objects.input(h.select_object, [objects, slider, state], view_out, api_name="select_object")
        new_btn.click(_bind(h.new_object, limits), [slider, state], view_out, api_name="new_object")
        remove_btn.click(h.remove_object, [slider, state], view_out, api_name="remove_object")
        clear_btn.click(h.clear_clicks, [slider, state], view_out, api_name="clear_clicks", **engine_work)
        rename_btn.click(h.rename, [name_box, slider, state], view_out, api_name="rename")
        everything_btn.click(_bind(h.segment_everything, limits), [slider, state], view_out,
                             api_name="segment_everything", **engine_work)
        track_btn.click(_bind(h.track, limits), [direction, effect, slider, state], view_out + [out_video, files],
                        api_name="track", **engine_work)
        stop_btn.click(h.stop, [state], [status], api_name="stop", concurrency_limit=None, queue=False)
        effect.input(h.change_effect, [effect, state], [out_video, files, status], api_name="effect", **engine_work)
        demo.unload(_session_ended)
    return demo


def _session_ended(request: gr.Request) -> None:
    """The tab closed (its heartbeat stopped): remove the session's folder now."""
    end_session(request.session_hash)

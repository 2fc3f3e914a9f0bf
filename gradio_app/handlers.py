"""What each button, click and upload does to the visitor's :class:`~.workspace.Workspace`.

Handlers return plain values in the order :mod:`.ui` wires them. A bad request raises
``gr.Error`` with a message, before anything is changed: nothing the visitor made is lost.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import gradio as gr

from . import engine
from .downloads import export_files, render_video
from .limits import Limits
from .media import UploadRefused, decode_upload
from .view import display_scale, render_frame
from .workspace import FramePrompt, Workspace, workspace_for

SAMPLE = Path(__file__).parent / "sample" / "sample.mp4"
MODES = ("Add to the object (positive click)", "Remove from the object (negative click)",
         "Box: click two opposite corners")
DIRECTIONS = ("Both directions", "Forward from the first click")
ON_ZEROGPU = engine.ON_ZEROGPU


def view(ws: Workspace, frame: int, message: str):
    """[state, frame image, frame slider, object list, status, summary] for the page."""
    if ws.clip is None:
        return ws, None, gr.Slider(value=0, maximum=0, interactive=False), gr.Radio(choices=[], value=None), \
            message, ws.summary()
    frame = min(max(int(frame or 0), 0), ws.clip.num_frames - 1)
    choices = [(f"{oid} · {obj.name}", oid) for oid, obj in ws.objects.items()]
    slider = gr.Slider(value=frame, minimum=0, maximum=max(ws.clip.num_frames - 1, 1), step=1,
                       interactive=ws.clip.num_frames > 1)
    return (ws, render_frame(ws, frame), slider, gr.Radio(choices=choices, value=ws.selected), message,
            ws.summary())


def _ws(state, request: gr.Request) -> Workspace:
    return workspace_for(getattr(request, "session_hash", None), state)


def _need_clip(ws: Workspace) -> None:
    if ws.clip is None:
        raise gr.Error("Load the sample or upload a video first.")


# ------------------------------------------------------------------ input
def open_clip(limits: Limits, src, name: str, state, request: gr.Request):
    ws = _ws(state, request)
    with ws.lock:
        incoming = ws.path("frames_incoming.npy")
        try:
            clip = decode_upload(src, incoming, limits, name=name)
        except UploadRefused as exc:  # the clip loaded before, its objects and results stay as they were
            incoming.unlink(missing_ok=True)
            raise gr.Error(str(exc)) from None
        ws.new_clip(replace(clip, path=incoming.replace(ws.path("frames.npy"))), name)
        msg = (f"Loaded {name}: {clip.num_frames} frame(s), {clip.note}. Click on an object to select it; "
               "click again to refine, switch to negative clicks to remove parts.")
        return (*view(ws, 0, msg), None, None)


def load_sample(limits: Limits, state, request: gr.Request):
    return open_clip(limits, SAMPLE, "the sample video", state, request)


def upload(limits: Limits, file, state, request: gr.Request):
    if file is None:
        raise gr.Error("No file was uploaded.")
    return open_clip(limits, file, "the uploaded file", state, request)


def change_model(name: str, state, request: gr.Request):
    ws = _ws(state, request)
    try:
        engine.get_model(name)
    except Exception as exc:  # offline, or a download that failed: keep the model in use
        gr.Warning(f"Could not load {name}: {exc}")
        return ws, ws.model_name, f"Still using {ws.model_name}."
    with ws.lock:
        ws.model_name = name
        ws.stale = bool(ws.objects)
    return ws, name, f"Using {name}." + (" Click Track again to use it on your objects." if ws.objects else "")


# ---------------------------------------------------------------- prompts
def _add_object(limits: Limits, ws: Workspace) -> int:
    if len(ws.objects) >= limits.max_objects:
        raise gr.Error(f"At most {limits.max_objects} objects: remove one first.")
    return ws.add_object()


def click(limits: Limits, frame: int, x: float, y: float, mode: str, state, request: gr.Request):
    """A click at (x, y) image pixels on `frame`, as `mode` says (positive, negative, box corner)."""
    ws = _ws(state, request)
    with ws.lock:
        _need_clip(ws)
        frame = int(frame)
        if not (0 <= frame < ws.clip.num_frames and 0 <= x < ws.clip.width and 0 <= y < ws.clip.height):
            raise gr.Error(f"Click ({x:.0f}, {y:.0f}) on frame {frame} is outside the video.")
        if mode not in MODES:
            raise gr.Error(f"Unknown click mode {mode!r}.")
        if ws.selected is None or ws.selected not in ws.objects:
            _add_object(limits, ws)
        oid = ws.selected
        old = ws.objects[oid].prompts.get(frame, FramePrompt())
        if mode == MODES[2]:
            corner = ws.pending_corner
            if corner is None or corner[0] != frame:
                ws.pending_corner = (frame, float(x), float(y))
                return view(ws, frame, "Now click the opposite corner of the box.")
            ws.pending_corner = None
            box = (min(corner[1], x), min(corner[2], y), max(corner[1], x), max(corner[2], y))
            if box[2] - box[0] < 2 or box[3] - box[1] < 2:
                raise gr.Error("The box is too small: click two opposite corners.")
            new = old.with_box(box)
        else:
            new = old.with_click(x, y, positive=mode == MODES[0])
        mask = engine.predict_mask(ws.model_name, ws.clip.path, frame, new)
        ws.set_prompt(oid, frame, new, mask)
        area = int(mask.sum())
        msg = (f"{ws.objects[oid].name}: {area} pixels on frame {frame}." if area else
               f"{ws.objects[oid].name}: no mask here yet; try a positive click inside the object.")
        return view(ws, frame, msg + _stale_hint(ws))


def _stale_hint(ws: Workspace) -> str:
    return " Click Track to follow it through the video." if ws.stale else ""


def select_click(limits: Limits, frame, mode, state, evt: gr.SelectData, request: gr.Request):
    """A click on the picture: its pixel ``evt.index`` (x, y) of the enlarged frame, back in frame pixels."""
    ws = _ws(state, request)
    _need_clip(ws)
    k = display_scale(ws.clip.height, ws.clip.width)
    x, y = evt.index
    return click(limits, frame, float(int(x) // k), float(int(y) // k), mode, ws, request)


def new_object(limits: Limits, frame, state, request: gr.Request):
    ws = _ws(state, request)
    with ws.lock:
        _need_clip(ws)
        oid = _add_object(limits, ws)
        return view(ws, frame, f"Object {oid} added: click on it in the frame.")


def show_frame(frame, state, request: gr.Request):
    ws = _ws(state, request)
    with ws.lock:
        _need_clip(ws)
        return view(ws, frame, f"Frame {int(frame)}.")


def select_object(oid, frame, state, request: gr.Request):
    ws = _ws(state, request)
    with ws.lock:
        if oid is not None and int(oid) in ws.objects:
            ws.selected, ws.pending_corner = int(oid), None
        return view(ws, frame, f"Selected {ws.objects[ws.selected].name}." if ws.selected else "")


def remove_object(frame, state, request: gr.Request):
    ws = _ws(state, request)
    with ws.lock:
        if ws.selected is None:
            raise gr.Error("No object is selected.")
        name = ws.objects[ws.selected].name
        ws.remove_object(ws.selected)
        return view(ws, frame, f"Removed {name}.")


def clear_clicks(frame, state, request: gr.Request):
    ws = _ws(state, request)
    with ws.lock:
        _need_clip(ws)
        if ws.selected is None:
            raise gr.Error("No object is selected.")
        ws.pending_corner = None
        ws.set_prompt(ws.selected, int(frame), FramePrompt(), None)
        return view(ws, frame, f"Cleared the clicks of {ws.objects[ws.selected].name} on frame {int(frame)}.")


def rename(name: str, frame, state, request: gr.Request):
    ws = _ws(state, request)
    with ws.lock:
        if ws.selected is None:
            raise gr.Error("No object is selected.")
        clean = " ".join(str(name or "").split())[:40]
        if not clean:
            raise gr.Error("Type a name first.")
        ws.objects[ws.selected].name = clean
        return view(ws, frame, f"Renamed object {ws.selected} to {clean}.")


def segment_everything(limits: Limits, frame, state, request: gr.Request):
    ws = _ws(state, request)
    with ws.lock:
        _need_clip(ws)
        room = limits.max_objects - len(ws.objects)
        if room <= 0:
            raise gr.Error(f"At most {limits.max_objects} objects: remove one first.")
        frame = int(frame)
        masks = engine.segment_everything(ws.model_name, ws.clip.path, frame, room)
        for m in masks:
            oid = ws.add_object()
            ws.set_prompt(oid, frame, FramePrompt(mask=m), m)
        return view(ws, frame, f"Found {len(masks)} object(s) on frame {frame} (room for {room})."
                    + _stale_hint(ws))


# --------------------------------------------------------------- tracking
def track(limits: Limits, direction: str, effect: str, frame, state, request: gr.Request,
          progress=gr.Progress()):
    ws = _ws(state, request)
    with ws.lock:
        _need_clip(ws)
        prompts = ws.prompts()
        if not prompts:
            raise gr.Error("Click on an object first, then track it.")
        ws.cancel.clear()
        clip = ws.clip

        def report(done, total):
            progress((done, total), desc="Tracking", unit="frames")

        labels_path = ws.path("labels.npy")
        done = engine.track(ws.model_name, clip.path, clip.num_frames, prompts, direction == DIRECTIONS[0],
                            labels_path, ws.path("features"),
                            progress=None if ON_ZEROGPU else report, cancel=None if ON_ZEROGPU else ws.cancel)
        ws.set_result(labels_path, done)
        stopped = ws.cancel.is_set()
        video, files = _outputs(ws, effect, progress)
        msg = (f"Stopped after {done} frame(s); what was tracked is kept." if stopped else
               f"Tracked {len(prompts)} object(s) over {done} frame(s).")
        return (*view(ws, frame, msg + " Pick an effect, play the result, download the files."), video, files)


def _outputs(ws: Workspace, effect: str, progress):
    def report(done, total):
        progress((done, total), desc="Writing the video", unit="frames")

    video = render_video(ws, effect, progress=report)
    return str(video), [str(p) for p in export_files(ws)] + [str(video)]


def stop(state, request: gr.Request):
    ws = _ws(state, request)
    ws.cancel.set()
    return "Stopping after the current frame…"


def change_effect(effect: str, state, request: gr.Request, progress=gr.Progress()):
    ws = _ws(state, request)
    with ws.lock:
        if ws.clip is None or ws.labels_path is None:
            return None, None, "Track first; the effect applies to the result."
        video, files = _outputs(ws, effect, progress)
        return video, files, f"Effect: {effect}."

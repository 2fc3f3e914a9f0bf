"""The layers the tracker owns: its results (Labels, Tracks) and its prompts (Points, Shapes).

They all sit on the session's pixel grid (the image's scale times the working-size divisor), so a
point's data coordinates are the session's pixels and the results overlay the image exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._image import Frames

LABELS = "SAM 2 labels"
TRACKS = "SAM 2 lineage"
CLICKS = "SAM 2 clicks"
BOXES = "SAM 2 boxes"
POSITIVE, NEGATIVE, DAUGHTER = "lime", "magenta", "yellow"


def find(viewer: Any, name: str, kind: str) -> Any:
    """The layer called ``name`` if it is a ``kind`` ('Labels', 'Tracks', ...), else None."""
    import napari.layers

    layer = viewer.layers[name] if name in viewer.layers else None
    return layer if isinstance(layer, getattr(napari.layers, kind)) else None


def _grid(frames: Frames) -> dict:
    return {"scale": frames.scale, "translate": frames.translate}


def _add_keeping_selection(viewer: Any, add, *args, **kwargs) -> Any:
    """Add a layer without making it the active one (the user's next click still goes to the
    layer they were working in, e.g. the clicks layer)."""
    active = viewer.layers.selection.active
    layer = add(*args, **kwargs)
    if active is not None and active in viewer.layers:
        viewer.layers.selection.active = active
    return layer


def labels_layer(viewer: Any, frames: Frames, stack: np.ndarray) -> Any:
    """The results Labels layer (T, H, W), made or refilled with ``stack``."""
    layer = find(viewer, LABELS, "Labels")
    if layer is not None and layer.data.shape == stack.shape:
        layer.data[...] = stack
        layer.refresh()
        return layer
    if layer is not None:
        viewer.layers.remove(layer)
    layer = _add_keeping_selection(viewer, viewer.add_labels, stack, name=LABELS, opacity=0.5, **_grid(frames))
    layer.metadata["sam2_tracker"] = True
    return layer


def tracks_layer(viewer: Any, frames: Frames, stack: np.ndarray, parents: dict[int, int]) -> Any | None:
    """The lineage Tracks layer from the results: one track per segment, ``graph`` = parents (the
    same segments, labels and parents as the CTC and GEFF exports). None when nothing is tracked."""
    from sam2_plugins.exports import tracks_table

    tracks, graph = tracks_table(stack, parents)
    layer = find(viewer, TRACKS, "Tracks")
    if len(tracks) == 0:
        if layer is not None:
            viewer.layers.remove(layer)
        return None
    if layer is not None:
        layer.graph = {}  # the old graph may name tracks the new data lacks
        layer.data = tracks
        layer.graph = graph
        return layer
    layer = _add_keeping_selection(viewer, viewer.add_tracks, tracks, graph=graph, name=TRACKS, tail_length=10,
                                   tail_width=3, **_grid(frames))
    layer.metadata["sam2_tracker"] = True
    return layer


def prompt_layers(viewer: Any, frames: Frames) -> tuple[Any, Any]:
    """The clicks (Points, with 'object' and 'positive' features) and boxes (Shapes) layers."""
    import pandas as pd

    points = find(viewer, CLICKS, "Points")
    if points is None or tuple(points.scale) != frames.scale:
        if points is not None:
            viewer.layers.remove(points)
        features = pd.DataFrame({"object": pd.Series([], dtype=int), "positive": pd.Series([], dtype=bool)})
        points = viewer.add_points(np.empty((0, 3)), ndim=3, name=CLICKS, features=features, size=7,
                                   border_color="black", face_color=POSITIVE, **_grid(frames))
        points.metadata["sam2_tracker"] = True
    boxes = find(viewer, BOXES, "Shapes")
    if boxes is None or tuple(boxes.scale) != frames.scale:
        if boxes is not None:
            viewer.layers.remove(boxes)
        boxes = viewer.add_shapes(ndim=3, name=BOXES, edge_color="cyan", face_color="transparent", edge_width=2,
                                  **_grid(frames))
        boxes.metadata["sam2_tracker"] = True
    return points, boxes


def clicks_of(points: Any, frame: int, obj_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) pixels and 1/0 labels of ``obj_id``'s clicks on ``frame``."""
    if len(points.data) == 0:
        return np.zeros((0, 2)), np.zeros(0, int)
    feats = points.features
    on = (np.round(points.data[:, 0]).astype(int) == frame) & (feats["object"].to_numpy() == obj_id)
    xy = points.data[on][:, [2, 1]]
    return xy, feats["positive"].to_numpy()[on].astype(int)


def show_prompts(points: Any, boxes: Any, clicks: list[tuple], rects: list[tuple]) -> None:
    """Draw a restored session's clicks (frame, y, x, object, positive) and boxes (frame, x0, y0,
    x1, y1, object) without the layers' edit events (they are the session's prompts already)."""
    import pandas as pd

    with points.events.data.blocker(), boxes.events.data.blocker():
        points.data = np.array([c[:3] for c in clicks], float).reshape(-1, 3)
        points.features = pd.DataFrame({"object": pd.Series([c[3] for c in clicks], dtype=int),
                                        "positive": pd.Series([c[4] for c in clicks], dtype=bool)})
        if clicks:
            points.face_color = [POSITIVE if c[4] else NEGATIVE for c in clicks]
        boxes.data = []
        if rects:
            boxes.add_rectangles([np.array([[f, y0, x0], [f, y1, x1]]) for f, x0, y0, x1, y1, _ in rects])

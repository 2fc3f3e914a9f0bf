"""Reader for ``.sam2session`` files: the saved results as a Labels layer and the lineage as a
Tracks layer, without the movie or a model (the tracker's 'Load session' restores the whole
session onto the movie). Reading never runs code from the file (a zip of JSON and safetensors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable



def get_reader(path: "str | list[str]") -> Callable | None:
    if isinstance(path, list):
        return None if len(path) != 1 else get_reader(path[0])
    return read_session if str(path).endswith(".sam2session") else None


def read_session(path: str) -> list[tuple[Any, dict, str]]:
    from sam2_plugins.exports import tracks_table
    from sam2_plugins.video import read_session_results

    labels, parents, video = read_session_results(path)
    name = Path(path).stem
    info = {"sam2_session": str(path), "video": video.get("description")}
    layers = [(labels, {"name": f"{name} labels", "metadata": info}, "labels")]
    tracks, graph = tracks_table(labels, parents)
    if len(tracks):
        layers.append((tracks, {"name": f"{name} lineage", "graph": graph, "metadata": info}, "tracks"))
    return layers

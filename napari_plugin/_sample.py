"""Sample data: the shipped synthetic 16-bit time-lapse of dividing cells (30 frames, 192×192),
which the shipped micro-synthetic model tracks offline."""

from __future__ import annotations


def sample_cells():
    """[(frames, layer options, 'image')] for napari's File > Open Sample menu."""
    import tifffile
    from sam2_plugins.sample import sample_paths

    tif, _ = sample_paths()
    frames = tifffile.imread(tif)
    return [(frames, {"name": "dividing cells", "colormap": "gray",
                      "metadata": {"source": str(tif), "axes": "TYX"}}, "image")]

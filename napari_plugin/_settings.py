"""The plugin's settings (Preferences > Plugins > SAM 2 tracker): default model, device, cache folder.

Read through napari's plugin settings (npe2 ``configurations``); the defaults apply when napari has
none (an older napari, or settings not yet created).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PLUGIN = "sam2-plugins"


@dataclass
class TrackerSettings:
    model: str = "micro-synthetic"
    device: str = "auto"
    cache_folder: str = ""

    @property
    def cache_path(self) -> Path:
        """Where features (``features/``) and autosaves (``autosave/``) go."""
        if self.cache_folder.strip():
            return Path(self.cache_folder).expanduser()
        from sam2_plugins.checkpoints.hub import cache_dir

        return cache_dir() / "napari"

    @property
    def feature_dir(self) -> Path:
        return self.cache_path / "features"

    @property
    def autosave_dir(self) -> Path:
        return self.cache_path / "autosave"


def read_settings() -> TrackerSettings:
    """The user's settings, or the defaults where napari has none."""
    try:
        from napari.settings import get_plugin_settings

        section = get_plugin_settings(PLUGIN).tracker
    except (ImportError, KeyError, AttributeError):
        return TrackerSettings()
    return TrackerSettings(str(section.model), str(section.device), str(section.cache_folder or ""))

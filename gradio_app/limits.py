"""What one visitor may ask of the server: stated in the page and enforced on every upload and click.

Defaults suit a shared CPU Space; a host changes them with environment variables
(``SAM2_APP_MAX_UPLOAD_MB``, ``SAM2_APP_MAX_SECONDS``, ``SAM2_APP_MAX_FRAMES``, ``SAM2_APP_MAX_SIDE``,
``SAM2_APP_MAX_OBJECTS``, ``SAM2_APP_CONCURRENCY``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Limits:
    """Upload size, video length, resolution and objects one browser session may use."""

    max_upload_mb: float = 50.0  # file size of an upload
    max_seconds: float = 30.0  # duration of an uploaded video
    max_frames: int = 300  # frames of an uploaded video
    max_side: int = 720  # longer side in pixels; larger videos are downscaled to it
    max_objects: int = 8  # objects tracked at once
    concurrency: int = 1  # engine calls (clicks, tracking, rendering) running at once in the process

    @classmethod
    def from_env(cls, environ=None) -> "Limits":
        """Defaults, overridden by ``SAM2_APP_<FIELD>`` variables; a bad value is refused by name."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            key = "SAM2_APP_" + f.name.upper()
            if key in environ:
                kind = float if f.type in ("float", float) else int
                try:
                    values[f.name] = kind(environ[key])
                except ValueError:
                    raise ValueError(f"{key}={environ[key]!r} is not a {kind.__name__}") from None
                if values[f.name] <= 0:
                    raise ValueError(f"{key} must be positive, got {environ[key]!r}")
        return cls(**values)

    def describe(self) -> str:
        """The limits as one line for the page."""
        return (f"Limits: files up to {self.max_upload_mb:g} MB, videos up to {self.max_seconds:g} s and "
                f"{self.max_frames} frames, larger than {self.max_side} px downscaled, "
                f"up to {self.max_objects} objects.")

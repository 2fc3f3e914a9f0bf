"""Cancellation flags shared by long operations (propagation, exports, training)."""

from __future__ import annotations

from typing import Any


def is_cancelled(cancel: Any) -> bool:
    """True when ``cancel`` (None, a ``threading.Event``-like object or a callable) says stop."""
    if cancel is None:
        return False
    if hasattr(cancel, "is_set"):
        return bool(cancel.is_set())
    return bool(cancel())

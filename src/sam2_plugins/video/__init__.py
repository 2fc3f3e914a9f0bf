"""Video: the interactive session, SAM 2's tracker and memories, results, frame loading, live
streams and session files.

* :class:`VideoSession` -- prompts on any frame, propagation, read-back (``model.open_video``);
* :class:`StreamSession` -- frames pushed one at a time (``model.open_stream``);
* :func:`save_session` / :func:`load_session` -- a session to a file and back;
* :class:`CellEvents` / :class:`CellOptions` -- divisions and new cells found while tracking;
  :class:`Lineage` -- who divided into whom.
"""

from .cells import CellEvents, CellOptions
from .lineage import Division, Lineage
from .results import FrameResult
from .session import VideoSession
from .session_file import load_session, read_session_file, read_session_results, save_session
from .stream import StreamSession

__all__ = ["CellEvents", "CellOptions", "Division", "FrameResult", "Lineage", "StreamSession", "VideoSession",
           "load_session", "read_session_file", "read_session_results", "save_session"]

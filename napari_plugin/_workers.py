"""Long work in a ``napari.qt.threading`` worker, where the core's refusals (a ``ValueError`` with
its reason, an unreachable hub, ...) come back as values for a notification rather than as
tracebacks; any other exception is a bug and goes to napari's error handling."""

from __future__ import annotations

import inspect
from typing import Any, Callable

from napari.qt.threading import create_worker
from qtpy.QtCore import QObject, Signal

USER_ERRORS = (ValueError, KeyError, OSError, RuntimeError, IndexError)


def start_worker(work: Callable[[], Any], *, done: Callable, fail: Callable, finished: Callable,
                 yielded: Callable | None = None):
    """Run ``work`` (a function, or one returning a generator whose items go to ``yielded``);
    ``done(result)`` or ``fail(error)`` then ``finished()`` run in the GUI thread."""

    def guarded():
        try:
            result = work()
            if inspect.isgenerator(result):
                result = yield from result
        except USER_ERRORS as err:
            return err, None
        return None, result

    worker = create_worker(guarded)
    if yielded is not None:
        worker.yielded.connect(yielded)
    worker.returned.connect(lambda out: fail(out[0]) if out[0] is not None else done(out[1]))
    worker.errored.connect(fail)
    worker.finished.connect(finished)
    worker.start()
    return worker


class ProgressRelay(QObject):
    """Carries ``(done, total)`` from a worker thread to the GUI thread (a queued Qt signal): for
    progress that a blocking call reports through a callback, such as a model download."""

    moved = Signal(int, int)

    def __call__(self, done: int, total: int) -> None:
        self.moved.emit(int(done), int(total))

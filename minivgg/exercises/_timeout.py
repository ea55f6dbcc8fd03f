"""A time limit on the student's code: an endless loop becomes a report, not a hung checker.

On the main thread of a POSIX process (the CLI, a Jupyter kernel, pytest) the
limit is ``signal.setitimer(ITIMER_REAL)``: its handler raises
:class:`StudentTimeout` between two bytecodes of the student's loop, so even
``while True: pass`` stops, and nothing is left running. Elsewhere (another
thread, Windows) the code runs in a daemon thread that is abandoned when the
limit passes: the caller gets its report, but the loop keeps a core busy until
the process exits.
"""

from __future__ import annotations

import signal
import threading
from typing import Any, Callable


class StudentTimeout(BaseException):
    """The student's code ran past its time limit.

    A ``BaseException``, like ``KeyboardInterrupt``, so that the student's own
    ``except Exception`` (and the checker's) cannot swallow it.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__(f"did not finish within {seconds:g} s")
        self.seconds = seconds


def run_with_time_limit(fn: Callable[[], Any], seconds: float | None) -> Any:
    """``fn()``, or raise :class:`StudentTimeout` once it has run ``seconds`` (None: no limit)."""
    if seconds is None:
        return fn()
    if not seconds > 0:
        raise ValueError(f"exercise time limit: seconds must be > 0 or None, got {seconds!r}")
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        return _with_alarm(fn, seconds)
    return _with_thread(fn, seconds)


def _with_alarm(fn: Callable[[], Any], seconds: float) -> Any:
    def on_alarm(signum, frame):
        raise StudentTimeout(seconds)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    old_delay, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if old_delay:  # someone else's timer was running: give it back (approximately)
            signal.setitimer(signal.ITIMER_REAL, old_delay)


def _with_thread(fn: Callable[[], Any], seconds: float) -> Any:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller's thread below
            box["error"] = exc

    t = threading.Thread(target=target, name="minivgg-student-code", daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        raise StudentTimeout(seconds)
    if "error" in box:
        raise box["error"]
    return box.get("value")

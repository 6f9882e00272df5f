"""Ctrl-C and SIGTERM as one exception, ``Interrupted``, that the CLI catches to stop a
sweep cleanly (exit 128 + signal number: 130, 143).

Not a KeyboardInterrupt on purpose: CPython (3.11) can flag a KeyboardInterrupt that
passed through exec()'d code (dataclasses are made that way during imports) as unhandled
and exit with -SIGINT although the CLI caught it (seen in 1-2 of 16 runs under load).
Stdlib only: installed before anything heavy loads.
"""

from __future__ import annotations

import signal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """A stop signal arrived; ``signum`` says which."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _raise(signum, frame):
    raise Interrupted(signum)


def install() -> dict:
    """Raise Interrupted on SIGINT and SIGTERM; returns the previous handlers."""
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for s in STOP_SIGNALS:
        signal.signal(s, _raise)
    return previous


def ignore() -> None:
    """From here on the work is done or being wrapped up: a late signal must not break it.
    (Signal handlers belong to the main thread: from another one, structbench.run() in a
    thread, nothing to do.)"""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)


def restore(previous: dict) -> None:
    for s, handler in previous.items():
        signal.signal(s, handler)

"""Stops (Ctrl-C, SIGTERM) that end a run cleanly, never half-way through a write.

- `sigterm_as_interrupt`: Python's default SIGTERM ends the process at once: no `finally`, no
  flush, and the run directory keeps saying `running`. Raised as KeyboardInterrupt instead,
  the training loop's own interrupt handling runs: the watch flushes what it holds and marks
  the run `interrupted`.
- `stops_deferred`: SIGINT and SIGTERM held for the length of a block and delivered at its
  end, for work that must not be cut in two (a metrics part and its bookkeeping, a run
  directory and the context that records its end) or that cannot be interrupted cleanly
  (`import torch` swallows a KeyboardInterrupt raised inside its C start-up and fails later).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt (main thread only; elsewhere the
    handler cannot be set and SIGTERM keeps its default)."""
    try:
        previous = signal.signal(signal.SIGTERM, _interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stops_deferred() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM are recorded instead of handled; at its end the
    previous handlers are restored and each recorded signal is raised again
    (`signal.raise_signal`), so it is handled as if it had arrived then.

    Only the main thread receives signals in Python; elsewhere this is a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {}
    for number in STOP_SIGNALS:
        handler = signal.getsignal(number)
        if handler is not None:  # None: set outside Python, and it could not be restored
            previous[number] = signal.signal(number, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number in dict.fromkeys(caught):
            signal.raise_signal(number)

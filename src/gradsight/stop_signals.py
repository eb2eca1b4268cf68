"""SIGTERM handled as Ctrl-C, so that a run stopped by a scheduler or `kill` ends cleanly.

Python's default SIGTERM ends the process at once: no `finally`, no flush, and the run
directory keeps saying `running`. Raised as KeyboardInterrupt instead, the training loop's
own interrupt handling runs: the watch flushes what it holds and marks the run
`interrupted`.
"""

from __future__ import annotations

import signal
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

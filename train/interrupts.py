"""Ctrl-C at safe points of a training loop: ``interrupts_at_safe_points()`` defers the first Ctrl-C to an
event the loop polls between batches."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def interrupts_at_safe_points() -> Iterator[threading.Event]:
    """Turn the first Ctrl-C into an event the training loop polls between batches: a KeyboardInterrupt raised
    inside a TensorBoard or checkpoint write can leave a lock held and hang the save-and-exit path. A second
    Ctrl-C interrupts at once. Outside the main thread (no signal handlers there) the event never fires."""
    pending = threading.Event()
    previous = signal.getsignal(signal.SIGINT) or signal.default_int_handler

    def defer(signum: int, frame: Any) -> None:
        pending.set()
        signal.signal(signal.SIGINT, previous)

    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:
        signal.signal(signal.SIGINT, defer)
    try:
        yield pending
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)

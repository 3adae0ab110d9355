"""train.interrupts: the first Ctrl-C is deferred to a safe point, the second interrupts at once."""

from __future__ import annotations

import os
import signal
import time

import pytest

from train.interrupts import interrupts_at_safe_points


def test_first_ctrl_c_is_deferred_and_the_second_interrupts_at_once():
    # Python's own handler, also when the suite runs as a background job (which starts with SIGINT ignored)
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with interrupts_at_safe_points() as ctrl_c:
            assert not ctrl_c.is_set()
            os.kill(os.getpid(), signal.SIGINT)  # handled between bytecodes: no KeyboardInterrupt here
            assert ctrl_c.is_set()
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)  # not reached: the handler runs as soon as os.kill returns
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, outer)

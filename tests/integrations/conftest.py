"""Isolation between integration tests that share a pytest worker."""

from __future__ import annotations

import sys

import pytest


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """Forget Accelerate's process-wide state after each test.

    `AcceleratorState` is a singleton: a Trainer run with `bf16=True` leaves it in bf16, and
    the next `Accelerator(cpu=True)` in the same process would autocast to bf16 as well.
    """
    yield
    state = sys.modules.get("accelerate.state")
    if state is not None:
        state.AcceleratorState._reset_state(reset_partial_state=True)
        state.GradientState._reset_state()

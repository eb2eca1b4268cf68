"""The result of an LR range test (`lr_find`): the curve, the suggestions, and its figure."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

MARKERS = {"valley": ("o", "tab:green"), "steep": ("^", "tab:orange"), "minimum": ("s", "tab:red")}


@dataclass(frozen=True)
class LRFindResult:
    """The curve of an LR range test and its suggestions.

    Attributes:
        lrs: Learning rate of each step taken.
        losses: Smoothed (bias-corrected moving average) loss after each step.
        raw_losses: Loss of each step's batch.
        valley: Suggested lr: half way along the longest descent (fastai's default).
        steep: lr of the steepest descent of the smoothed loss against log lr.
        minimum: lr of the lowest smoothed loss / 10.
        stopped_early: Whether the loss blew up before `end_lr`.
    """

    lrs: list[float]
    losses: list[float]
    raw_losses: list[float]
    valley: float
    steep: float
    minimum: float
    stopped_early: bool
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def suggestion(self) -> float:
        """The suggested learning rate (`valley`)."""
        return self.valley

    def plot(self, ax: Any = None) -> Any:
        """Smoothed loss against lr (log axis) with the suggestions marked, on `ax` (default: a
        new Figure outside pyplot's state); returns the Figure."""
        from gradsight.drawing import new_figure

        fig = new_figure(None, 6.0, 4.0) if ax is None else ax.figure
        ax = fig.add_subplot() if ax is None else ax
        ax.plot(self.lrs, self.losses, color="tab:blue", label="smoothed loss")
        ax.plot(self.lrs, self.raw_losses, color="tab:blue", alpha=0.25, lw=0.8, label="loss")
        finite = [v for v in self.losses if math.isfinite(v)]
        for name, (marker, colour) in MARKERS.items():
            lr = getattr(self, name)
            ax.axvline(lr, color=colour, ls=":", lw=1)
            ax.plot([lr], [self.loss_at(lr)], marker, color=colour, label=f"{name} {lr:.2g}")
        ax.set_xscale("log")
        if finite:
            low, high = min(finite), max(finite)
            ax.set_ylim(low - 0.05 * (high - low), high + 0.05 * (high - low) + 1e-12)
        ax.set(xlabel="learning rate", ylabel="loss", title="LR range test")
        ax.legend(fontsize=8)
        return fig

    def loss_at(self, lr: float) -> float:
        """The smoothed loss at the step whose lr is closest to `lr` (log scale)."""
        i = min(range(len(self.lrs)), key=lambda k: abs(math.log(self.lrs[k]) - math.log(lr)))
        return self.losses[i]

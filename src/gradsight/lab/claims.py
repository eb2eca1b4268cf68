"""Claims as data: a claim's sentence and decision rule, written once, judged on measurements.

An experiment states each claim of the theory as a module-level `ClaimSpec` whose sentence
and rule are `str.format` templates, and its thresholds as named constants beside it:

```python
FACTOR_MAX = 0.5
GEOMETRIC = ClaimSpec(
    "geometric",
    "The first/last gradient ratio of a sigmoid MLP falls geometrically with depth.",
    rule="every seed's factor per layer < {factor_max:g}",
    central=True,
    control="varied: the depth; fixed: width, Xavier init, the input batch",
)

def geometric(m: Measured) -> Claim:
    factors = mean_spread(...)
    return GEOMETRIC.judge(
        factors.high < FACTOR_MAX,
        {"factor per layer": factors},
        f"ratio x{factors.mean:.3f} per layer",
        factor_max=FACTOR_MAX,
    )
```

The constant is the only place the number is written: the check reads it, the sentence is
formatted from it, and the tests import it.

Every spec names its control: what the measurement varied and what it held fixed, so a
verdict says what it is about. A claim that can fail carries a second look: whether a
confound was found in the experiment and controlled, and what the controlled measurement
says. It is a template too, filled from measured values, and shown only when the claim
did not hold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradsight.errors import InputError
from gradsight.lab.experiment import Claim, Measured
from gradsight.stats import bootstrap_ci, t_interval


@dataclass(frozen=True)
class ClaimSpec:
    """A claim of the theory before it is measured.

    Attributes:
        name: A short kebab-case key, unique in its experiment (tests find claims by it); a
            template too, when one spec is judged on several conditions.
        statement: The checkable sentence, a `str.format` template.
        rule: The decision rule, a template too; the verdict ends "held if RULE.".
        central: The experiment's main claim (the tests assert it holds).
        control: What was varied and what was held fixed, "varied: ...; fixed: ...", a
            template.
        second_look: For a claim that did not hold: whether a confound was found and
            controlled, and what the controlled measurement says; a template, its numbers
            formatted from measured fields, never written in.
    """

    name: str
    statement: str
    rule: str
    central: bool = False
    control: str = ""
    second_look: str = ""

    def judge(
        self,
        held: bool,
        numbers: Mapping[str, Any],
        measured: str,
        *,
        central: bool | None = None,
        **fields: Any,
    ) -> Claim:
        """The Claim: the templates filled from `fields`, the verdict "MEASURED; held if RULE.".

        Every template is filled whatever the verdict (a missing field is an error in every
        run, not only in the runs where the claim fails); the second look is kept only when
        the claim did not hold.

        Args:
            held: The rule applied to the measurements.
            numbers: The measured values behind the verdict (spreads, intervals, counts).
            measured: What was measured, in words and numbers.
            central: Overrides the spec's `central` (one spec judged on several conditions,
                one of them the experiment's main claim).
            **fields: The thresholds and run values the templates name.
        """
        rule = self.rule.format(**fields)
        second_look = self.second_look.format(**fields)
        return Claim(
            self.statement.format(**fields),
            held=bool(held),
            numbers=numbers,
            verdict=f"{measured}; held if {rule}.",
            central=self.central if central is None else central,
            name=self.name.format(**fields),
            control=self.control.format(**fields),
            second_look="" if held else second_look,
        )


def judge_all(checks: Sequence[Callable[[Measured], Claim]], measured: Measured) -> list[Claim]:
    """Each check applied to the measurements, in order."""
    return [check(measured) for check in checks]


def bootstrap_label(n: int, level: float = 0.95) -> str:
    """What a percentile bootstrap interval of a mean over `n` seeds is, in words.

    With n <= 3 its quantiles are the smallest and largest value: the mean of a resample
    equals the smallest value with probability n^-n >= 1/27 > 2.5%.
    """
    base = f"{level:.0%} percentile bootstrap"
    return f"{base} (the range of {n} seeds)" if n <= 3 else f"{base} over {n} seeds"


def mean_interval(
    values: Sequence[float] | np.ndarray, method: str, level: float = 0.95
) -> tuple[str, tuple[float, float]]:
    """An interval of the mean over seeds, and its name for the page.

    Args:
        values: One value per seed (a per-seed difference, for paired comparisons).
        method: "t" for Student's t-interval (`stats.t_interval`), "bootstrap" for the
            percentile bootstrap (`stats.bootstrap_ci`), kept where a claim's verdict was
            written against it.
        level: Coverage, in (0, 1).

    Returns:
        (label, (low, high)), e.g. ("95% t-interval", (0.20, 0.30)).
    """
    if method == "t":
        return f"{level:.0%} t-interval", t_interval(values, level)
    if method == "bootstrap":
        return bootstrap_label(len(values), level), bootstrap_ci(values, level=level)
    raise InputError(f"method must be 't' or 'bootstrap', got {method!r}")

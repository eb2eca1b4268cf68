"""vanishing_gradients: the back-propagated gradient shrinks with depth, or over time.

With a = sigma(z) the chain rule gives dL/dz_l = sigma'(z_l) W_{l+1}^T dL/dz_{l+1}; with
sigmoid' <= 1/4 and weights of norm ~1 each layer divides the gradient by ~4, so the first
layers of a deep sigmoid net receive almost nothing and stop learning (Hochreiter 1991;
Glorot & Bengio 2010). In a vanilla RNN the same product runs over time steps
(Bengio et al. 1994).
"""

from __future__ import annotations

from gradsight.diagnosis import thresholds as th
from gradsight.diagnosis.finding import Finding, Remedy
from gradsight.diagnosis.metrics import (
    TIME_STEP,
    Context,
    error_norms,
    fmt,
    median_ratio,
    table,
    time_steps,
)
from gradsight.telemetry.history import History

DEPTH_EXPLANATION = (
    "Each layer multiplies the back-propagated gradient by its activation's derivative and "
    "its weights; sigmoid' <= 1/4 (tanh' <= 1, and less when saturated), so the product "
    "shrinks geometrically with depth and the first layers barely learn."
)
TIME_EXPLANATION = (
    "A vanilla RNN multiplies the gradient by W_hh^T diag(act'(z_t)) at every time step "
    "back, so the error from the loss fades before it reaches early inputs: the network "
    "cannot learn long-range dependencies."
)


def _factor(ratio: float) -> str:
    return fmt(1 / ratio) if ratio > 0 else "infinity (no gradient reaches the first layer)"


def _severity(ratio: float, warning: float, critical: float) -> str | None:
    if ratio < critical:
        return "critical"
    if ratio < warning:
        return "warning"
    return None


def depth(history: History, context: Context) -> list[Finding]:
    """First/last layer gradient-norm ratio, median over logged steps."""
    if "grad/norm" not in history:
        return []
    norms, metric, layers = error_norms(history)
    if len(layers) < 3 or norms.empty:
        return []
    median = median_ratio(norms, layers[0], layers[-1])
    if median is None:
        return []
    ratio, count = median
    severity = _severity(ratio, th.VANISHING_RATIO_WARNING, th.VANISHING_RATIO_CRITICAL)
    if severity is None:
        return []
    first_step = norms.iloc[0]
    starved = int((first_step < th.VANISHING_LAYER_FRACTION * first_step[layers[-1]]).sum())
    saturating = "act/saturated" in history
    remedies = [Remedy("relu_activation", "ReLU's derivative is 1 wherever the unit is on.")]
    remedies += [Remedy("he_init", "Keeps the signal's variance constant across ReLU layers.")]
    remedies += [Remedy("batch_norm", "Re-centres and rescales every layer's pre-activations.")]
    remedies += [Remedy("residual_connections", "The identity path carries the gradient back.")]
    if not saturating:
        remedies = [remedies[2], remedies[3], remedies[1], remedies[0]]
    remedies.append(Remedy("layerwise_pretraining", "Gives early layers useful weights first."))
    return [
        Finding(
            kind="vanishing_gradients",
            severity=severity,
            summary=(
                f"The back-propagated gradient ({metric}) falls by a factor {_factor(ratio)} "
                f"from {layers[-1]} to "
                f"{layers[0]} (median over {count} logged steps); at step "
                f"{int(norms.index[0])} {starved} of {len(layers)} layers get less than "
                f"{fmt(th.VANISHING_LAYER_FRACTION)} of the last layer's."
            ),
            explanation=DEPTH_EXPLANATION,
            layers=tuple(layers),
            steps=tuple(int(s) for s in norms.index[:1]),
            evidence={
                "first_last_ratio": ratio,
                "first_layer": layers[0],
                "last_layer": layers[-1],
                "layers_below_fraction": starved,
                "metric": metric,
                "norm_first_step": {k: float(v) for k, v in first_step.items()},
            },
            remedies=tuple(remedies),
        )
    ]


def _sequences(history: History) -> list[tuple[str, str, list[str]]]:
    """(metric, what it is, time-step layers ordered by t) of each measured sequence:
    gradsight RNNs' hidden states, and the input sequence of each torch RNN module."""
    found = []
    steps = time_steps(history)
    if steps:
        found.append(("act/grad_norm", "the hidden state", steps))
    for module, ordered in _by_module(history, "time/grad_input").items():
        found.append(("time/grad_input", f"the input of {module}", ordered))
    return found


def _by_module(history: History, metric: str) -> dict[str, list[str]]:
    """The `NAME[t]` layers of a per-time-step metric, by module, ordered by t."""
    by_module: dict[str, list[tuple[int, str]]] = {}
    if metric in history:
        for layer in history.layers(metric):
            if match := TIME_STEP.match(layer):
                by_module.setdefault(match["tap"], []).append((int(match["t"]), layer))
    return {module: [layer for _, layer in sorted(pairs)] for module, pairs in by_module.items()}


def over_time(history: History, context: Context) -> list[Finding]:
    """dL/dh_0 against dL/dh_T for gradsight RNNs, dL/dx_0 against dL/dx_T for the input of
    torch's RNN modules, and the influence of x_0 against x_T on their last output
    (`time/memory`), over the last half of logged steps.

    With a loss on every time step (a language model) each step's input gets its own share
    of the loss's gradient, so the loss gradient's ratio stays near 1 whether or not the
    recurrence keeps gradients alive; the memory probe shows the recurrence itself.
    """
    findings = []
    for metric, what, steps in _sequences(history):
        if len(steps) < 3:
            continue
        norms = table(history, metric, last=0.5)[steps]
        median = median_ratio(norms, steps[0], steps[-1])
        if median is None:
            continue
        ratio, _ = median
        severity = _severity(ratio, th.TEMPORAL_RATIO_WARNING, th.TEMPORAL_RATIO_CRITICAL)
        if severity is not None:
            findings.append(
                _time_finding(severity, ratio, what, steps, norms, _gated(history, steps))
            )
    return findings + _memory(history)


def _gated(history: History, steps: list[str]) -> bool:
    module = TIME_STEP.match(steps[0])["tap"]
    return history.meta.get("layers", {}).get(module, {}).get("type") in ("LSTM", "GRU")


def _memory(history: History) -> list[Finding]:
    """How far back an input still moves a torch RNN's last output (`time/memory`): info.

    With a loss on every step, a memory of a few steps is all a task with short-range
    structure needs (a trained LSTM forgets as fast as a vanilla RNN there), so a short
    memory is not a fault the statistics can name; it is reported for tasks that need more.
    """
    findings = []
    for module, steps in _by_module(history, "time/memory").items():
        if len(steps) < 3:
            continue
        norms = table(history, "time/memory", last=0.5)[steps]
        ratios = [median_ratio(norms, step, steps[-1]) for step in steps[:-1]]
        reach = [
            len(steps) - 1 - i
            for i, r in enumerate(ratios)
            if r and r[0] >= th.TEMPORAL_RATIO_WARNING
        ]
        horizon = max(reach, default=0)
        if horizon >= len(steps) - 1:
            continue  # the whole sequence reaches the end
        first = ratios[0][0] if ratios[0] else 0.0
        vanilla = not _gated(history, steps)
        remedy = Remedy("lstm_cell", "An LSTM's additive cell state carries information further.")
        findings.append(
            Finding(
                kind="vanishing_gradients",
                severity="info",
                summary=(
                    f"{module} remembers about {horizon} of its {len(steps)} steps: an input "
                    f"older than that moves its last output less than "
                    f"{fmt(th.TEMPORAL_RATIO_WARNING)} as much as the newest one does (the "
                    f"oldest: {fmt(first)}; median over the last half of training). Fine when "
                    "the task needs no longer memory."
                ),
                explanation=TIME_EXPLANATION,
                layers=(steps[0], steps[-1]),
                evidence={"memory_steps": horizon, "first_last_ratio": first},
                remedies=(remedy,) if vanilla else (),
            )
        )
    return findings


def _time_finding(
    severity, ratio: float, what: str, steps: list[str], norms, gated: bool
) -> Finding:
    remedies = [
        Remedy("lstm_cell", "The LSTM's additive cell state keeps the gradient alive."),
        Remedy("gradient_clipping", "Lets a larger learning rate through safely."),
        Remedy("adaptive_optimizer", "Rescales the small gradients of early steps."),
    ]
    if gated:  # already gated: its gates are closing, which a new cell type would not change
        remedies = remedies[1:]
    return Finding(
        kind="vanishing_gradients",
        severity=severity,
        summary=(
            f"The gradient with respect to {what} falls by a factor "
            f"{_factor(ratio)} from the last time step to the first ({len(steps)} steps, "
            f"median over the last half of training)."
            if not what.endswith("last output")
            else f"Through the recurrence, the first of {len(steps)} input steps moves "
            f"{what} {_factor(ratio)} times less than the last one does (median over the "
            "last half of training): what it learns cannot span the sequence."
        ),
        explanation=TIME_EXPLANATION,
        layers=(steps[0], steps[-1]),
        steps=tuple(int(s) for s in norms.index[-1:]),
        evidence={"first_last_ratio": ratio, "time_steps": len(steps)},
        remedies=tuple(remedies),
    )


RULES = (depth, over_time)

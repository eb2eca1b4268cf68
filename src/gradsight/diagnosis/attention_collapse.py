"""attention_collapse: attention rows become one-hot while the logits or the loss run away.

Each query's attention is a softmax over the keys it may see; its entropy H, divided by
log(n keys), is 1 for uniform attention and 0 when each query looks at one key. Training at
a high learning rate can drive it to 0 in every head together with the attention logits
q.k / sqrt(d), which grow without bound: the softmax saturates, its gradient
p (1 - p) vanishes, and the loss spikes or diverges (Zhai et al. 2023, "Stabilizing
Transformer Training by Preventing Attention Entropy Collapse"; Dehghani et al. 2023,
"Scaling Vision Transformers to 22 Billion Parameters"; Wortsman et al. 2023, "Small-scale
proxies for large-scale Transformer training instabilities", who fix it with qk-layernorm).

Sharp attention alone is not a pathology (a head that learns to look at the previous token
is sharp): a module is flagged only when its entropy ratio is near 0 and either its logits
grew far beyond what a sharp softmax needs or the loss itself was unstable.
"""

from __future__ import annotations

import numpy as np

from gradsight.diagnosis import thresholds as th
from gradsight.diagnosis._loss import divergence, loss_curve, spikes
from gradsight.diagnosis.finding import Finding, Remedy
from gradsight.diagnosis.learning_rate import unstable_loss
from gradsight.diagnosis.metrics import Context, fmt, run_text, table
from gradsight.telemetry.history import History


def _late(history: History, name: str):
    """Per-module median over the last `ATTN_LATE` of the logged steps (NaN rows dropped)."""
    return table(history, name, last=th.ATTN_LATE).median()


def unstable(history: History, context: Context) -> bool:
    """Whether the loss spiked, diverged, gave back its progress or became non-finite."""
    if "loss" not in history:
        return False
    curve = loss_curve(history, context)
    return bool(
        not np.isfinite(history.series("loss").to_numpy()).all()
        or divergence(curve)
        or spikes(history)
        or unstable_loss(history, curve)
    )


def rule(history: History, context: Context) -> list[Finding]:
    """Entropy ratio below `ATTN_COLLAPSED_RATIO` with logits above `ATTN_LOGIT_HIGH` or an
    unstable loss."""
    if "attn/entropy_ratio" not in history:
        return []
    ratios = table(history, "attn/entropy_ratio")
    late = _late(history, "attn/entropy_ratio").dropna()
    collapsed = late[late < th.ATTN_COLLAPSED_RATIO]
    if collapsed.empty:
        return []
    logits = _late(history, "attn/logit_max") if "attn/logit_max" in history else None
    large = logits.reindex(collapsed.index).dropna() if logits is not None else collapsed.iloc[:0]
    large = large[large > th.ATTN_LOGIT_HIGH]
    shaky = unstable(history, context)
    if large.empty and not shaky:
        return []
    worst = str(collapsed.idxmin())
    first = ratios[worst].dropna()
    start = float(first.iloc[0]) if len(first) else float("nan")
    because = []
    if not large.empty:
        top = str(large.idxmax())
        because.append(
            f"the largest attention logit reached {fmt(float(large.max()))} in {top} (a "
            f"softmax is one-hot far below {fmt(th.ATTN_LOGIT_HIGH)})"
        )
    if shaky:
        because.append("the loss was unstable (it spiked, diverged or gave back its progress)")
    run = run_text(history)
    return [
        Finding(
            kind="attention_collapse",
            severity="warning",
            summary=(
                f"Attention collapsed in {len(collapsed)} of {len(late)} attention modules: "
                f"the entropy ratio of {worst} fell from {fmt(start)} to "
                f"{fmt(float(collapsed.min()))} (each query attends to about one key), and "
                + " and ".join(because)
                + (f"; {run}" if run else "")
                + "."
            ),
            explanation=(
                "Attention logits q.k / sqrt(d) that keep growing saturate the softmax: each "
                "query looks at one key, the softmax's gradient vanishes, and training turns "
                "unstable (Zhai et al. 2023; Dehghani et al. 2023)."
            ),
            layers=tuple(str(m) for m in collapsed.index),
            evidence={
                "entropy_ratio_end": {str(k): float(v) for k, v in collapsed.items()},
                "entropy_ratio_start": start,
                "logit_max_end": (
                    {str(k): float(v) for k, v in logits.reindex(collapsed.index).items()}
                    if logits is not None
                    else None
                ),
                "unstable_loss": shaky,
            },
            remedies=(
                Remedy("qk_norm", "Normalised queries and keys keep the logits bounded."),
                Remedy("lower_learning_rate", "Logit growth is driven by large steps."),
                Remedy("lr_warmup", "The logits grow fastest in the first, largest steps."),
            ),
        )
    ]


RULES = (rule,)

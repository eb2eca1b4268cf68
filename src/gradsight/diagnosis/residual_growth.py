"""residual_growth: the residual stream of a transformer grows through depth or over training.

Each block adds its output to the residual stream, h_{l+1} = h_l + f(h_l). With a
normalisation in front of f (Pre-LN) the additions stay of order one and the stream's RMS
grows like sqrt(l) with depth (Xiong et al. 2020, "On Layer Normalization in the Transformer
Architecture"); without one, f scales with h and the growth compounds block after block.
Over training, a learning rate too high inflates the weights and the stream with them; the
blocks' additions then barely change it, and the output logits drift with it (Wortsman et
al. 2023, "Small-scale proxies for large-scale Transformer training instabilities"; Dehghani
et al. 2023).
"""

from __future__ import annotations

from gradsight.diagnosis import thresholds as th
from gradsight.diagnosis.attention_collapse import unstable
from gradsight.diagnosis.finding import Finding, Remedy
from gradsight.diagnosis.learning_rate import logit_growth
from gradsight.diagnosis.metrics import Context, fmt, run_text, table
from gradsight.telemetry.history import History


def rule(history: History, context: Context) -> list[Finding]:
    """Last block's RMS over the first block's above `RESID_DEPTH_GROWTH`, or a block's RMS
    over its first logged value above `RESID_TIME_GROWTH` while training was unstable (the
    loss spiked, diverged or gave back its progress, or the attention logits grew past
    saturation); medians over the last `ATTN_LATE` of logged steps.

    Growth over time alone is not flagged: with a norm in front of every block the stream's
    scale does not matter to them, and high but healthy rates inflate it too."""
    if "resid/norm" not in history:
        return []
    norms = table(history, "resid/norm")
    blocks = history.layers("resid/norm")  # forward order
    late = table(history, "resid/norm", last=th.ATTN_LATE).median().reindex(blocks)
    first = norms.apply(lambda column: column.dropna().iloc[0] if column.notna().any() else None)
    first = first.reindex(blocks)
    reasons, evidence = [], {}
    depth = None
    if len(blocks) >= 2 and late.iloc[0] > 0:
        depth = float(late.iloc[-1] / late.iloc[0])
        evidence["depth_growth"] = depth
        if depth >= th.RESID_DEPTH_GROWTH:
            reasons.append(
                f"its RMS grows {fmt(depth)}-fold from {blocks[0]} ({fmt(float(late.iloc[0]))}) "
                f"to {blocks[-1]} ({fmt(float(late.iloc[-1]))})"
            )
    over_time = (late / first.where(first > 0)).dropna()
    if len(over_time):
        block = str(over_time.idxmax())
        growth = float(over_time.max())
        evidence["time_growth"] = growth
        if growth >= th.RESID_TIME_GROWTH and (
            unstable(history, context) or logit_growth(history) is not None
        ):
            reasons.append(
                f"the RMS after {block} grew {fmt(growth)}-fold during training "
                f"({fmt(float(first[block]))} to {fmt(float(late[block]))})"
            )
    if not reasons:
        return []
    if "out/logit_std" in history:
        logits = history.series("out/logit_std").dropna()
        if len(logits):
            evidence["logit_std_start"] = float(logits.iloc[0])
            evidence["logit_std_end"] = float(logits.iloc[-1])
    run = run_text(history)
    logit_text = (
        f"; the output logits' std went from {fmt(evidence['logit_std_start'])} to "
        f"{fmt(evidence['logit_std_end'])}"
        if "logit_std_end" in evidence
        else ""
    )
    return [
        Finding(
            kind="residual_growth",
            severity="warning",
            summary=(
                "The residual stream grows: "
                + "; ".join(reasons)
                + logit_text
                + (f"; {run}" if run else "")
                + "."
            ),
            explanation=(
                "Each block adds to the residual stream; unnormalised or driven by large "
                "steps, the stream outgrows what the blocks add, so later blocks barely change "
                "it and the logits drift (Xiong et al. 2020; Wortsman et al. 2023)."
            ),
            layers=tuple(blocks),
            evidence={**evidence, "rms_end": {b: float(v) for b, v in late.dropna().items()}},
            remedies=(
                Remedy("layer_norm", "A norm before each block keeps what it adds in scale."),
                Remedy("lower_learning_rate", "Smaller steps inflate the weights less."),
                Remedy("lr_warmup", "The stream grows fastest in the first steps."),
                Remedy("weight_decay", "Keeps the weights, and the stream, from growing."),
            ),
        )
    ]


RULES = (rule,)

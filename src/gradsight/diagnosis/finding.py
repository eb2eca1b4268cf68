"""What a diagnosis says: a `Finding` (a named pathology with its evidence) and `Remedy`s;
`Findings`, the list `diagnose` returns."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from gradsight.diagnosis.finding_html import finding_html, findings_html
from gradsight.errors import InputError
from gradsight.files import write_atomic

Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
# A Finding's repr names this many layers and this many characters of its summary.
REPR_LAYERS, REPR_SUMMARY = 3, 100

# The finding kinds: a fixed vocabulary (names are added, never renamed).
FINDING_KINDS = (
    "vanishing_gradients",
    "exploding_gradients",
    "saturated_activations",
    "dead_units",
    "non_zero_centered",
    "learning_rate_too_high",
    "learning_rate_too_low",
    "saddle_point",
    "loss_plateau",
    "non_finite",
    "covariate_shift",
    "loss_spike",
    "attention_collapse",
    "residual_growth",
)

# Remedy name -> what it changes, in one line (gradsight.remedies applies them).
REMEDIES: dict[str, str] = {
    "relu_activation": "Replace sigmoid/tanh by ReLU: its derivative is 1 for active units.",
    "leaky_relu_activation": "Use LeakyReLU: a small slope for x < 0 keeps units from dying.",
    "elu_activation": "Use ELU: no dead zone, and outputs closer to zero mean.",
    "he_init": "He initialisation, std = sqrt(2 / fan_in), keeps ReLU activations' variance.",
    "glorot_init": "Glorot initialisation, var = 2 / (fan_in + fan_out), for tanh/sigmoid.",
    "batch_norm": "Insert batch norm after linear/conv layers: re-centres and rescales each layer.",
    "residual_connections": "Add skip connections: gradients reach early layers via the identity.",
    "lstm_cell": "Use an LSTM cell: its additive cell state carries gradients across time.",
    "gradient_clipping": "Clip the gradient norm: one bad step no longer throws the weights away.",
    "weight_decay": "Add weight decay: keeps weights (and so gradients) from growing.",
    "lower_learning_rate": "Lower the learning rate (try 1/10).",
    "raise_learning_rate": "Raise the learning rate (try 10x).",
    "lr_range_test": "Run an LR range test (Smith 2017) and take its suggestion.",
    "momentum": "Add momentum: it averages the zig-zag out and crosses flat regions.",
    "adaptive_optimizer": "Use Adam: per-parameter step sizes rescue small or uneven gradients.",
    "normalize_inputs": "Standardize the inputs: zero mean, unit variance per feature.",
    "layerwise_pretraining": "Pre-train the layers one at a time before training the whole net.",
    "lr_warmup": "Warm the learning rate up linearly over the first steps (10%).",
    "layer_norm": "Insert layer norm before each block: bounds what enters it, whatever the depth.",
    "qk_norm": "Normalise queries and keys before their product: bounds the attention logits.",
}


@dataclass(frozen=True)
class Remedy:
    """A change that addresses a finding.

    Attributes:
        name: One of `REMEDIES`.
        reason: Why it helps in this case (one sentence).
    """

    name: str
    reason: str = ""

    def __post_init__(self) -> None:
        if self.name not in REMEDIES:
            raise InputError(f"unknown remedy {self.name!r}; choose one of: {', '.join(REMEDIES)}")

    @property
    def description(self) -> str:
        """The remedy's one-line description."""
        return REMEDIES[self.name]


@dataclass(frozen=True)
class Finding:
    """A named pathology, with the numbers that show it and the remedies that address it.

    Attributes:
        kind: One of `FINDING_KINDS`.
        severity: "info", "warning" or "critical".
        summary: One sentence with the numbers.
        explanation: The mechanism, in one or two sentences.
        layers: The layers concerned (qualified module names).
        steps: The steps concerned.
        evidence: The measured numbers the summary rests on.
        remedies: Best first.
    """

    kind: str
    severity: Severity
    summary: str
    explanation: str = ""
    layers: tuple[str, ...] = ()
    steps: tuple[int, ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict)
    remedies: tuple[Remedy, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in FINDING_KINDS:
            raise InputError(
                f"unknown finding kind {self.kind!r}; choose one of: {', '.join(FINDING_KINDS)}"
            )
        if self.severity not in SEVERITY_RANK:
            raise InputError(f"severity must be info, warning or critical, got {self.severity!r}")

    def __repr__(self) -> str:
        """`Finding(kind, severity, layers=[a, b, c, … (n in all)]: summary)`, the summary cut."""
        layers = ", ".join(self.layers[:REPR_LAYERS])
        if len(self.layers) > REPR_LAYERS:
            layers += f", … ({len(self.layers)} in all)"
        where = f", layers=[{layers}]" if self.layers else ""
        summary = self.summary
        if len(summary) > REPR_SUMMARY:
            summary = summary[: REPR_SUMMARY - 1].rstrip() + "…"
        return f"Finding({self.kind}, {self.severity}{where}: {summary})"

    def _repr_html_(self) -> str:
        """The notebook display: a card like the report's."""
        return finding_html(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        """The inverse of `to_dict`."""
        data = dict(data)
        data["layers"] = tuple(data.get("layers", ()))
        data["steps"] = tuple(data.get("steps", ()))
        data["remedies"] = tuple(Remedy(**r) for r in data.get("remedies", ()))
        return cls(**data)


class Findings(list):
    """A list of `Finding`s (what `diagnose` returns) shown in a notebook as cards.

    It is a plain list in every other way; an empty one shows "No problem found".
    """

    def _repr_html_(self) -> str:
        """The notebook display: a tally by severity, then one card per finding."""
        return findings_html(self)


def save_findings(findings: list[Finding], path: str | Path) -> Path:
    """Write findings as JSON (a run directory's `findings.json`)."""
    path = Path(path)
    write_atomic(path, json.dumps([f.to_dict() for f in findings], indent=2, default=float) + "\n")
    return path


def load_findings(path: str | Path) -> Findings:
    """Read findings written by `save_findings`."""
    return Findings(Finding.from_dict(d) for d in json.loads(Path(path).read_text()))

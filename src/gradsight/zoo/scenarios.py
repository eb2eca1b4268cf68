"""The zoo's table: public-style models, each healthy or with one injected pathology.

Every `Scenario` names a family (a module of this package with `build(seed, **settings)`),
the settings that inject the pathology, and the finding kinds that name it rightly. A
healthy scenario expects none: it must get no warning or critical finding. Each
pathology was checked by direct measurement (the families' `probe`s and the zoo tests),
not by gradsight; the descriptions say what is physically wrong.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

FAMILIES = ("gpt2", "bert", "mnist_cnn", "resnet", "word_lm")

# Acceptable names for the usual symptoms: a run with this pathology is rightly named when
# one of these kinds is among the warning/critical findings.
LR_HIGH = frozenset({"learning_rate_too_high", "loss_spike"})
LR_LOW = frozenset({"learning_rate_too_low", "loss_plateau"})


@dataclass(frozen=True)
class Scenario:
    """One zoo run.

    Attributes:
        id: "family/what", unique.
        family: The module that builds it (one of FAMILIES).
        description: What is injected and what it does to training.
        expected: Finding kinds that name the pathology; empty for a healthy run.
        settings: Keyword arguments of the family's `build`.
        steps: Weight updates of a full run.
        quick_steps: Weight updates in quick mode (tests, smoke runs).
    """

    id: str
    family: str
    description: str
    expected: frozenset[str] = frozenset()
    settings: dict[str, Any] = field(default_factory=dict)
    steps: int = 200
    quick_steps: int = 30

    @property
    def healthy(self) -> bool:
        """Whether no pathology is injected."""
        return not self.expected


_TABLE = (
    # -- GPT-2 (nanoGPT / HF causal-LM loop) ------------------------------------------------
    Scenario(
        "gpt2/healthy",
        "gpt2",
        "2-layer GPT-2, AdamW 3e-3 with 10% warmup and cosine decay, clip 1.0: the loss falls "
        "from log(vocab) towards the chain's entropy.",
    ),
    Scenario(
        "gpt2/deep_healthy",
        "gpt2",
        "6-layer GPT-2 at lr 3e-2 with warmup: the same settings as gpt2/no_layernorm, "
        "with its LayerNorms; trains well.",
        settings={"n_layer": 6, "lr": 3e-2},
    ),
    Scenario(
        "gpt2/warmup_high_lr",
        "gpt2",
        "lr 0.1 with 30% warmup: the control of gpt2/no_warmup; warmup lets the network "
        "take the high rate, and it trains well.",
        settings={"lr": 0.1, "warmup": 0.3},
    ),
    Scenario(
        "gpt2/lr_too_high",
        "gpt2",
        "AdamW at lr 0.3 (100x the healthy rate, ~30x the best): attention collapses onto "
        "single tokens and the loss stalls far above the healthy run's.",
        LR_HIGH,
        {"lr": 0.3},
    ),
    Scenario(
        "gpt2/lr_much_too_high",
        "gpt2",
        "AdamW at lr 1.0: the loss spikes to several times log(vocab) in the first steps, "
        "then stalls near the uniform guess.",
        LR_HIGH,
        {"lr": 1.0},
    ),
    Scenario(
        "gpt2/no_warmup",
        "gpt2",
        "lr 0.1 from the first step (no warmup): the loss jumps above its start, attention "
        "collapses, the run idles near log(vocab) for half its steps and ends far above "
        "the healthy loss; with warmup (gpt2/warmup_high_lr) the same rate trains well.",
        LR_HIGH,
        {"lr": 0.1, "warmup": 0.0},
    ),
    Scenario(
        "gpt2/lr_too_low",
        "gpt2",
        "AdamW at lr 1e-5: the loss hardly leaves log(vocab).",
        LR_LOW,
        {"lr": 1e-5},
    ),
    Scenario(
        "gpt2/bad_init",
        "gpt2",
        "initializer_range=1.0 (GPT-2 uses 0.02): logits and attention scores are huge, the "
        "first loss is several times log(vocab), the attention softmax is saturated "
        "(one-hot) and the loss stalls far above the healthy run's.",
        frozenset({"saturated_activations", "attention_collapse", "exploding_gradients"}),
        {"initializer_range": 1.0},
    ),
    Scenario(
        "gpt2/no_layernorm",
        "gpt2",
        "6-layer GPT-2 with every LayerNorm replaced by nn.Identity, at the lr that "
        "gpt2/deep_healthy takes: the residual stream and the gradients blow up within the "
        "warmup and the loss turns to NaN.",
        frozenset({"exploding_gradients", "non_finite", "residual_growth"}),
        {"n_layer": 6, "lr": 3e-2, "layer_norm": False},
    ),
    # -- BERT (HF text-classification loop) -------------------------------------------------
    Scenario(
        "bert/healthy",
        "bert",
        "2-layer BERT classifier, AdamW 2e-3, linear warmup and decay: the loss falls well "
        "below log(4).",
    ),
    Scenario(
        "bert/lr_too_high",
        "bert",
        "AdamW at lr 0.1: the loss rises above its start, attention collapses, the pooler's "
        "tanh saturates and the classifier ends at chance.",
        LR_HIGH,
        {"lr": 0.1},
    ),
    Scenario(
        "bert/lr_too_low",
        "bert",
        "AdamW at lr 1e-5: the loss stays at log(4).",
        LR_LOW,
        {"lr": 1e-5},
    ),
    Scenario(
        "bert/bad_init",
        "bert",
        "initializer_range=1.0 (BERT uses 0.02): gradient norms tens to hundreds of times "
        "the healthy run's (clipped to 1), attention one-hot, most of the pooler's tanh "
        "units saturated; the loss stays above chance.",
        frozenset({"exploding_gradients", "saturated_activations", "attention_collapse"}),
        {"initializer_range": 1.0},
    ),
    # -- MNIST CNN (pytorch/examples mnist) -------------------------------------------------
    Scenario(
        "mnist_cnn/healthy",
        "mnist_cnn",
        "The example's Net, Adadelta lr 1.0, StepLR gamma 0.7 per epoch: >90% accuracy.",
        steps=300,
    ),
    Scenario(
        "mnist_cnn/dead_relu",
        "mnist_cnn",
        "conv1, conv2 and fc1 biases initialised at -3: every ReLU unit is off for every "
        "input, no gradient reaches them, the loss stays at log(10).",
        frozenset({"dead_units"}),
        {"bias_init": -3.0},
        steps=300,
    ),
    Scenario(
        "mnist_cnn/lr_blowup",
        "mnist_cnn",
        "Adadelta at lr 30: the loss spikes in the first steps and the ReLUs of conv2 and "
        "fc1 die for good; the loss then sits at log(10).",
        frozenset({"dead_units", "learning_rate_too_high", "loss_spike"}),
        {"lr": 30.0},
        steps=300,
    ),
    Scenario(
        "mnist_cnn/sigmoid_saturated",
        "mnist_cnn",
        "torch.sigmoid in place of F.relu and weights drawn from N(0, 3^2): most sigmoid "
        "outputs sit in the flat tails; the loss falls little.",
        frozenset({"saturated_activations", "vanishing_gradients"}),
        {"activation": "sigmoid", "weight_std": 3.0},
        steps=300,
    ),
    Scenario(
        "mnist_cnn/lr_too_low",
        "mnist_cnn",
        "Adadelta at lr 0.01 (the example uses 1.0): the loss stays at log(10).",
        LR_LOW,
        {"lr": 0.01},
        steps=300,
    ),
    # -- ResNet (torchvision model, pytorch/examples imagenet loop) -------------------------
    Scenario(
        "resnet/healthy",
        "resnet",
        "ResNet-10 (BasicBlock, BN, torchvision init), SGD lr 0.05 momentum 0.9: near-perfect "
        "digits accuracy.",
    ),
    Scenario(
        "resnet/lr_too_high",
        "resnet",
        "SGD at lr 5: the loss spikes far above log(10), then hovers at or above it; most "
        "channels of the later stages die.",
        LR_HIGH | {"dead_units"},
        {"lr": 5.0},
    ),
    Scenario(
        "resnet/no_bn",
        "resnet",
        "ResNet-10 with norm_layer=nn.Identity at the healthy lr: it learns for a few dozen "
        "steps, then the gradient norm grows ~100x, the loss spikes and every ReLU of the "
        "last stage dies; the loss ends at log(10).",
        frozenset({"exploding_gradients", "dead_units", "loss_spike"}),
        {"batch_norm": False},
    ),
    Scenario(
        "resnet/plain_deep",
        "resnet",
        "34-layer plain network (no shortcut, no BN), torchvision init, width 8: the signal "
        "shrinks ~10^4x on its way forward, every weight gradient is tiny and the loss stays "
        "at log(10).",
        frozenset({"vanishing_gradients"}),
        {"layers": (3, 4, 6, 3), "batch_norm": False, "residual": False},
    ),
    # -- Word LM (pytorch/examples word_language_model) -------------------------------------
    Scenario(
        "word_lm/lstm_healthy",
        "word_lm",
        "2-layer LSTM, tied weights, manual SGD lr 20, clip 0.25, bptt 35: the loss falls "
        "far below log(vocab).",
    ),
    Scenario(
        "word_lm/gru_healthy",
        "word_lm",
        "The same with a GRU.",
        settings={"rnn_type": "GRU"},
    ),
    Scenario(
        "word_lm/rnn_tanh_long_bptt",
        "word_lm",
        "tanh RNN, bptt 70, lr 2: it learns the local word chain, but the gradient of the "
        "last step's loss reaching inputs 35 steps back is ~1e-12 of the one at the last "
        "step (an LSTM keeps ~1e-4 over 35).",
        frozenset({"vanishing_gradients"}),
        {"rnn_type": "RNN_TANH", "bptt": 70, "lr": 2.0},
    ),
    Scenario(
        "word_lm/rnn_relu_no_clip",
        "word_lm",
        "ReLU RNN at lr 20 without clip_grad_norm_: the gradient norm grows to ~1e5 within a "
        "dozen steps, then the loss and weights turn to NaN.",
        frozenset({"exploding_gradients", "non_finite"}),
        {"rnn_type": "RNN_RELU", "clip": 0.0},
    ),
    Scenario(
        "word_lm/rnn_tanh_no_clip",
        "word_lm",
        "tanh RNN at lr 20 without clip_grad_norm_: gradient norms of 1e2-1e6, the loss "
        "climbs to ~1e7 (bounded hidden states keep it finite).",
        frozenset({"exploding_gradients", "non_finite"}),
        {"rnn_type": "RNN_TANH", "clip": 0.0},
    ),
    Scenario(
        "word_lm/lr_too_high",
        "word_lm",
        "LSTM at lr 200 (clip 0.25): every step moves the weights by up to 50; the loss "
        "jumps above log(vocab) and ends far above the healthy run's.",
        LR_HIGH,
        {"lr": 200.0},
    ),
    Scenario(
        "word_lm/lr_too_low",
        "word_lm",
        "LSTM at lr 0.2: the loss hardly leaves log(vocab).",
        LR_LOW,
        {"lr": 0.2},
    ),
)

SCENARIOS: dict[str, Scenario] = {s.id: s for s in _TABLE}


def select(patterns: str | list[str] | None = None) -> list[Scenario]:
    """Scenarios whose id matches any of the glob patterns ("gpt2/*", "*healthy*"); a
    pattern without wildcards matches ids that contain it. None selects all.

    Raises:
        KeyError: When a pattern matches nothing.
    """
    if patterns is None:
        return list(SCENARIOS.values())
    if isinstance(patterns, str):
        patterns = [patterns]
    chosen: dict[str, Scenario] = {}
    for pattern in patterns:
        wild = any(c in pattern for c in "*?[")
        hits = [
            s
            for s in SCENARIOS.values()
            if (fnmatch.fnmatchcase(s.id, pattern) if wild else pattern in s.id)
        ]
        if not hits:
            raise KeyError(f"no zoo scenario matches {pattern!r}; ids: {', '.join(SCENARIOS)}")
        chosen.update((s.id, s) for s in hits)
    return [s for s in SCENARIOS.values() if s.id in chosen]

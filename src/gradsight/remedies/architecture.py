"""Remedies that change the architecture: LSTM cells, residual connections, pretraining."""

from __future__ import annotations

from typing import Any

from torch import nn

from gradsight.data.task import Task
from gradsight.models.rnn import RecurrentNet, rnn
from gradsight.remedies.base import NotApplicable, Treatment, treated


def lstm_cell(model: nn.Module, settings: dict[str, Any], task: Task, seed: int = 0) -> Treatment:
    """gradsight's vanilla `RecurrentNet` rebuilt with LSTM cells (Hochreiter & Schmidhuber 1997).

    Other models are not applicable: their recurrence is arbitrary code.
    """
    if not isinstance(model, RecurrentNet):
        raise NotApplicable(
            f"only gradsight's own RecurrentNet can be rebuilt with LSTM cells, not "
            f"{type(model).__name__}; use nn.LSTM / nn.LSTMCell in the model's code"
        )
    if model.cell != "rnn":
        raise NotApplicable(f"the model already uses {model.cell.upper()} cells")
    device = next(model.parameters()).device
    changed = rnn(
        model.input_size,
        model.hidden_size,
        model.head.out_features,
        cell="lstm",
        num_layers=model.num_layers,
        sequence_output=model.sequence_output,
        seed=seed,
    ).to(device)
    change = (
        f"gs.models.rnn({model.input_size}, {model.hidden_size}, {model.head.out_features}, "
        'cell="lstm", ...), or nn.LSTM in place of nn.RNN'
    )
    return treated("lstm_cell", changed, settings, task, change)


def residual_connections(
    model: nn.Module, settings: dict[str, Any], task: Task, seed: int = 0
) -> Treatment:
    """Not automated: where to add skips depends on the model's code."""
    raise NotApplicable(
        "skip connections are not added automatically; wrap equal-width hidden layers as "
        "h = h + f(h) (gs.models.mlp(..., residual=True))"
    )


def layerwise_pretraining(
    model: nn.Module, settings: dict[str, Any], task: Task, seed: int = 0
) -> Treatment:
    """Not automated: pre-training needs a per-layer objective."""
    raise NotApplicable("layer-wise pre-training is not automated; try relu_activation or he_init")

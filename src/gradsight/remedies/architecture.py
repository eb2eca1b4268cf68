"""Remedies that change the architecture: LSTM cells, residual connections, pretraining."""

from __future__ import annotations

from typing import Any

from torch import nn

from gradsight.data.task import Task
from gradsight.models.rnn import RecurrentNet, rnn
from gradsight.remedies.base import NotApplicable, Treatment, copy_model, treated
from gradsight.train.pretrain import hidden_layers, pretrain_layerwise

# layerwise_pretraining: Adam steps per hidden layer, its learning rate and batch. 200 steps
# of lr 1e-2 take a digits-sized autoencoder well below its per-unit-mean loss (tests/remedies).
PRETRAIN_STEPS = 200
PRETRAIN_LR = 1e-2
PRETRAIN_BATCH = 64


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
    """The hidden layers pretrained greedily as autoencoders of the task's training inputs.

    `gs.train.pretrain_layerwise` with `PRETRAIN_STEPS` Adam steps per layer (Hinton &
    Salakhutdinov 2006; Bengio et al. 2007); the training settings are kept, so the doctor
    fine-tunes with the same budget. Applies to models whose layers form an `nn.Sequential`
    chain Linear, Sigmoid/Tanh, ..., Linear (`gs.train.hidden_layers`), such as
    `gs.models.mlp(..., activation="sigmoid")`; other models are not applicable.
    """
    try:
        layers = hidden_layers(model)
    except ValueError as error:
        raise NotApplicable(f"layer-wise pretraining needs an MLP chain: {error}") from None
    features = layers[0].linear.in_features
    if task.x_train[0].numel() != features:
        raise NotApplicable(
            f"the task's inputs {tuple(task.input_shape)} do not flatten to the first Linear "
            f"layer's {features} features"
        )
    changed = copy_model(model)
    pretrain_layerwise(
        changed,
        task.x_train,
        steps=PRETRAIN_STEPS,
        lr=PRETRAIN_LR,
        batch_size=PRETRAIN_BATCH,
        seed=seed,
    )
    change = (
        f"gs.train.pretrain_layerwise(model, x_train, steps={PRETRAIN_STEPS}) after "
        f"building the model and before training: its {len(layers)} hidden layers start as "
        "autoencoders of the inputs (greedy layer-wise pretraining)"
    )
    return treated("layerwise_pretraining", changed, settings, task, change)

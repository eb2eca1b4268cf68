"""Greedy layer-wise autoencoder pretraining of an MLP's sigmoid/tanh hidden layers.

Hinton & Salakhutdinov (2006) and Bengio et al. (2007) train a deep net one layer at a time,
each hidden layer an autoencoder of the codes of the layers below, and fine-tune the whole
net with back-propagation afterwards. `pretrain_layerwise` does the first part, in place, for
any model whose layers form an `nn.Sequential` chain Linear, act, Linear, ..., Linear
(`hidden_layers` finds it), such as `gs.models.mlp(..., activation="sigmoid")`:

```python
model = gs.models.mlp(64, 10, depth=8, activation="sigmoid")
gs.train.pretrain_layerwise(model, task.x_train)  # then train as usual
```
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gradsight.errors import InputError

# Hidden units an autoencoder can be built on: bounded codes, in (0, 1) or (-1, 1).
UNITS: tuple[type[nn.Module], ...] = (nn.Sigmoid, nn.Tanh)
# Parameter-free modules a chain may hold anywhere; pretraining steps over them (dropout off).
_PASS: tuple[type[nn.Module], ...] = (nn.Dropout, nn.Identity, nn.Flatten)


@dataclass(frozen=True)
class HiddenLayer:
    """One hidden layer of a chain: h_out = activation(linear(h_in)).

    Attributes:
        name: The Linear layer's qualified name in the model ("fc1", "net.0", ...).
        linear: The Linear layer; pretraining overwrites its weight and bias.
        activation: Its Sigmoid or Tanh module.
    """

    name: str
    linear: nn.Linear
    activation: nn.Module


def _leaves(seq: nn.Sequential, prefix: str) -> list[tuple[str, nn.Module]]:
    """The (qualified name, module) of a Sequential's children, nested Sequentials unrolled."""
    leaves = []
    for name, child in seq.named_children():
        full = f"{prefix}.{name}" if prefix else name
        leaves += _leaves(child, full) if isinstance(child, nn.Sequential) else [(full, child)]
    return leaves


def _chain(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The leaves of the outermost Sequential that holds every parameter of the model."""
    params = {id(p) for p in model.parameters()}
    for name, module in model.named_modules():  # outermost first
        if isinstance(module, nn.Sequential) and {id(p) for p in module.parameters()} == params:
            return _leaves(module, name)
    raise InputError(
        f"{type(model).__name__} has no nn.Sequential holding all its layers, so its forward "
        "cannot be read as a chain Linear, activation, ..., Linear"
    )


def hidden_layers(model: nn.Module) -> list[HiddenLayer]:
    """The hidden layers of a model whose layers are a chain Linear, act, Linear, ..., Linear.

    The chain is the outermost `nn.Sequential` holding all the model's parameters, nested
    Sequentials unrolled (dropout, identity and flatten modules are skipped); every hidden
    Linear must be followed by an `nn.Sigmoid` or `nn.Tanh`, and the chain must end with a
    Linear output head, which is not returned.

    Raises:
        InputError: If the model is not such a chain; the message says where it is not.
    """
    chain = [(n, m) for n, m in _chain(model) if not isinstance(m, _PASS)]
    for name, module in chain:
        if not isinstance(module, nn.Linear) and any(True for _ in module.parameters()):
            raise InputError(
                f"{name} is a {type(module).__name__} layer: only chains of Linear layers "
                "with sigmoid/tanh units are pretrained"
            )
    for name, module in chain:
        if not isinstance(module, (nn.Linear, *UNITS)):
            raise InputError(
                f"{name} is a {type(module).__name__}: autoencoder pretraining needs sigmoid or "
                "tanh hidden units"
            )
    kinds = [isinstance(m, nn.Linear) for _, m in chain]
    if len(chain) < 3 or kinds != [i % 2 == 0 for i in range(len(chain))] or not kinds[-1]:
        order = ", ".join(type(m).__name__ for _, m in chain)
        raise InputError(
            f"expected Linear, activation, Linear, ..., Linear with at least one hidden layer, "
            f"got {order or 'no layers'}"
        )
    pairs = zip(chain[:-1:2], chain[1::2], strict=True)  # (Linear, activation) pairs
    return [HiddenLayer(name, fc, act) for (name, fc), (_, act) in pairs]


def _reconstruct(layer: HiddenLayer, decoder_bias: Tensor, v: Tensor) -> Tensor:
    """Tied-weight decoding r = W^T act(W v + b) + b' (a logit for binary visible units)."""
    return layer.activation(layer.linear(v)) @ layer.linear.weight + decoder_bias


def pretrain_layerwise(
    model: nn.Module,
    x: Tensor,
    steps: int = 200,
    lr: float = 1e-2,
    batch_size: int = 64,
    seed: int = 0,
) -> list[dict[str, float | str]]:
    """Greedy layer-wise autoencoder pretraining of the hidden layers, in place.

    Layer l, given the codes h of the layers below (h = x flattened for the first), is trained
    as a tied-weight autoencoder (Bengio et al. 2007; Vincent et al. 2010):

        c = act(W h + b),   r = W^T c + b'.

    Visible units in [0, 1] (pixels scaled to [0, 1], sigmoid codes) are binary: the loss is
    the cross-entropy L = -mean(h log s(r) + (1 - h) log(1 - s(r))), s the sigmoid. Other
    visible units (standardised inputs, tanh codes) are Gaussian with unit variance, as
    Hinton & Salakhutdinov (2006) model real-valued inputs: r is linear, L = mean((r - h)^2).
    Each layer gets `steps` Adam steps on minibatches drawn with replacement; then
    h <- act(W h + b) feeds the next. The decoder bias b' is thrown away, the output head and
    the model's train/eval mode are left as they were.

    Args:
        model: A chain Linear, Sigmoid/Tanh, ..., Linear (see `hidden_layers`).
        x: Training inputs, (N, *shape) with prod(shape) the first layer's in_features.
        steps: Adam steps per layer.
        lr: Adam's learning rate.
        batch_size: Examples per step.
        seed: Seeds the minibatch draws; the result depends on it and on the model only.

    Returns:
        Per hidden layer: "layer" (its name), "visible" ("binary" or "gaussian"), "loss" (the
        final reconstruction loss on all of x) and "baseline" (the loss of reconstructing every
        visible unit by its mean: the bar an autoencoder must clear).

    Raises:
        InputError: If the model is not such a chain or x does not fit its first layer.
    """
    layers = hidden_layers(model)
    first = layers[0].linear
    if x[0].numel() != first.in_features:
        raise InputError(
            f"inputs of shape {tuple(x.shape)} do not flatten to the first Linear layer's "
            f"{first.in_features} features"
        )
    generator = torch.Generator().manual_seed(seed)  # on the CPU: the same draws on any device
    h = x.flatten(1).to(device=first.weight.device, dtype=first.weight.dtype)  # (N, in)
    summary: list[dict[str, float | str]] = []
    for layer in layers:
        fc = layer.linear
        binary = bool(h.min() >= 0 and h.max() <= 1)
        loss_fn = F.binary_cross_entropy_with_logits if binary else F.mse_loss
        decoder_bias = nn.Parameter(torch.zeros_like(h[0]))  # (in,)
        params = [p for p in (fc.weight, fc.bias) if p is not None]
        optimizer = torch.optim.Adam([*params, decoder_bias], lr=lr)
        for _ in range(steps):
            v = h[torch.randint(len(h), (batch_size,), generator=generator)]  # (B, in)
            loss = loss_fn(_reconstruct(layer, decoder_bias, v), v)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        optimizer.zero_grad()
        with torch.no_grad():
            final = float(loss_fn(_reconstruct(layer, decoder_bias, h), h))
            if binary:
                mean = h.mean(0).clamp(1e-6, 1 - 1e-6).expand_as(h)
                baseline = float(F.binary_cross_entropy(mean, h))
            else:
                baseline = float(h.var(0, unbiased=False).mean())
            summary.append(
                {
                    "layer": layer.name,
                    "visible": "binary" if binary else "gaussian",
                    "loss": final,
                    "baseline": baseline,
                }
            )
            h = layer.activation(fc(h))  # (N, width)
    return summary

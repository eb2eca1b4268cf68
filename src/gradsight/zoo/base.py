"""What every zoo family hands the runner, and the small data sets they share.

A family module (gpt2, bert, mnist_cnn, resnet, word_lm) has `build(seed, **settings)`,
which returns a `Setup`: the model, its optimizer (None for a loop that updates the weights
by hand), the family's own training loop and a `probe` that measures the injected
pathology directly, without gradsight. The data are generated or loaded locally: nothing
is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

# Called by a training loop right after each weight update, with that step's loss.
AfterStep = Callable[[Tensor], None]


@dataclass
class Setup:
    """A model ready to train in its project's style.

    Attributes:
        model: The model.
        optimizer: Its optimizer, or None when the loop updates the weights itself.
        train: `train(steps, after_step)` runs `steps` weight updates of the family's loop
            and calls `after_step(loss)` after each one.
        probe: Direct measurements of the trained model on held-out data (loss, dead or
            saturated units, per-layer gradient norms, ...), as plain floats.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer | None
    train: Callable[[int, AfterStep], None]
    probe: Callable[[], dict[str, float]]


def sparse_markov(vocab: int, successors: int, generator: torch.Generator) -> Tensor:
    """A random transition matrix where each token has `successors` possible next tokens.

    Returns:
        (vocab, vocab) row-stochastic matrix; row entropy is at most log(successors), far
        below log(vocab), so a model that learns the chain beats the uniform guess.
    """
    matrix = torch.zeros(vocab, vocab)
    for token in range(vocab):
        nxt = torch.randperm(vocab, generator=generator)[:successors]
        weights = torch.rand(successors, generator=generator) + 0.5
        matrix[token, nxt] = weights / weights.sum()
    return matrix


def sample_markov(matrix: Tensor, chains: int, length: int, generator: torch.Generator) -> Tensor:
    """`chains` independent runs of the chain, each from a random first token.

    Returns:
        (chains, length) token ids.
    """
    vocab = matrix.shape[0]
    cdf = matrix.cumsum(1)
    tokens = torch.empty(chains, length, dtype=torch.long)
    tokens[:, 0] = torch.randint(vocab, (chains,), generator=generator)
    uniform = torch.rand(length, chains, 1, generator=generator)
    for t in range(1, length):  # inverse-CDF sampling, all chains at once
        nxt = torch.searchsorted(cdf[tokens[:, t - 1]], uniform[t])
        tokens[:, t] = nxt.squeeze(1).clamp_(max=vocab - 1)
    return tokens


def chain_entropy(matrix: Tensor, tokens: Tensor) -> float:
    """Mean next-token entropy (nats) of the chain over `tokens` (..., T): the best loss."""
    rows = matrix[tokens[..., :-1].reshape(-1)]
    logs = torch.where(rows > 0, rows.log(), torch.zeros_like(rows))
    return float(-(rows * logs).sum(1).mean())


def digits_images(seed: int = 0, size: int = 8) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """scikit-learn's 8x8 digits as images, scaled to [0, 1] then normalised, split 80/20.

    Args:
        seed: Seed of the stratified split.
        size: Side of the returned images; 8 keeps them as they are, larger sizes are
            bilinearly upsampled.

    Returns:
        x_train (N, 1, size, size), y_train (N,), x_test, y_test.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = torch.as_tensor(data.data, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    if size != 8:
        x = nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = (x - x.mean()) / x.std()  # as transforms.Normalize with the data set's mean and std
    y = torch.as_tensor(data.target, dtype=torch.long)
    index = torch.arange(len(y)).numpy()
    train, test = train_test_split(index, test_size=0.2, stratify=y.numpy(), random_state=seed)
    train, test = torch.as_tensor(train), torch.as_tensor(test)
    return x[train], y[train], x[test], y[test]


def dead_fraction(values: Tensor) -> float:
    """Fraction of units (dim 1: channels or features) that are <= 0 for every example and
    position of `values` (B, units, ...): as ReLU inputs or outputs, such units pass nothing
    forward and no gradient back."""
    per_unit = values.transpose(0, 1).reshape(values.shape[1], -1)  # (units, B x positions)
    return float((per_unit <= 0).all(dim=1).float().mean())


def grad_norms(model: nn.Module, groups: dict[str, str]) -> dict[str, float]:
    """Gradient norm of each group of parameters (those whose name starts with the prefix).

    Args:
        model: A model whose `.grad`s are filled.
        groups: Label -> parameter-name prefix.

    Returns:
        Label -> norm of the concatenated gradients of the group (0 when none has a grad).
    """
    out = {}
    for label, prefix in groups.items():
        squares = [
            p.grad.detach().double().square().sum()
            for name, p in model.named_parameters()
            if name.startswith(prefix) and p.grad is not None
        ]
        out[label] = float(torch.stack(squares).sum().sqrt()) if squares else 0.0
    return out


def norm_summary(norms: list[Tensor]) -> dict[str, float]:
    """Median and largest of the gradient norms a loop saw (finite ones), and how many
    were NaN or infinite; empty when the loop recorded none."""
    if not norms:
        return {}
    seen = torch.stack([n.detach().double().reshape(()) for n in norms])
    finite = seen[torch.isfinite(seen)]
    nan = float("nan")
    return {
        "train_grad_norm_median": float(finite.median()) if finite.numel() else nan,
        "train_grad_norm_max": float(finite.max()) if finite.numel() else nan,
        "train_grad_norm_nonfinite": float((~torch.isfinite(seen)).sum()),
    }


def module_outputs(model: nn.Module, names: tuple[str, ...], x: Tensor) -> dict[str, Tensor]:
    """The first output of each named child module on `x` (eval mode, no grad), by forward
    hooks; the model's train mode is restored afterwards."""
    seen: dict[str, Tensor] = {}
    hooks = [
        getattr(model, name).register_forward_hook(
            lambda module, args, out, name=name: seen.setdefault(name, out.detach().clone())
        )
        for name in names
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return seen

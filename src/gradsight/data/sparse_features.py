"""Classification where the informative features are rare: the case for Adagrad."""

from __future__ import annotations

import torch

from gradsight.checks import check_elements, check_float, check_int
from gradsight.data.task import Task
from gradsight.errors import InputError


def sparse_features(
    seed: int = 0,
    n_train: int = 2000,
    n_test: int = 1000,
    n_features: int = 100,
    n_informative: int = 50,
    density: float = 0.02,
    classes: int = 2,
) -> Task:
    """Rare informative features among frequent noise, after Duchi, Hazan & Singer 2011.

    Adagrad gives each weight a step size 1/sqrt(sum of its squared gradients), so weights of
    rare features (few non-zero gradients) keep large steps; one global learning rate is
    either too small for them or too large for the frequent ones. Generative model:

        y ~ Uniform{0, ..., K-1}
        informative column j < n_informative belongs to class c_j = j mod K;
            x_j ~ Bernoulli(K·density) if c_j = y, else x_j = 0     (so P(x_j ≠ 0) = density)
        the other n_features - n_informative columns: x_j ~ N(0, 1), independent of y.

    A rare feature, when present, names the class for certain; an example whose own class
    fired none of its m_c columns (probability q_c = (1 - K·density)^m_c) carries no
    information. The best possible accuracy is therefore (1/K)·(Σ_c (1 - q_c) + max_c q_c),
    given in the description (≈ 0.82 with the defaults); chance is 1/K. The informative
    columns come first. Use `standardize=False` to keep them sparse: standardizing turns
    their zeros into small negative values and their ones into large positive values.

    Args:
        seed: Seed of the local generator.
        n_train: Number of training examples.
        n_test: Number of test examples.
        n_features: Total number of columns.
        n_informative: Number of rare informative columns, classes <= n_informative <= n_features.
        density: Probability that an informative column is non-zero, in (0, 1/classes].
        classes: Number of classes K, >= 2.

    Returns:
        A cross-entropy/accuracy Task with inputs (N, n_features) and int64 labels (N,).
    """
    n_train, n_test = check_int("n_train", n_train, 1), check_int("n_test", n_test, 1)
    classes = check_int("classes", classes, 2)
    n_features = check_int("n_features", n_features, classes)
    n_informative = check_int("n_informative", n_informative, classes)
    check_elements("sparse_features (n_train + n_test) x n_features", n_train + n_test, n_features)
    if n_informative > n_features:
        raise InputError(f"n_informative must be <= n_features={n_features}, got {n_informative}")
    density = check_float("density", density, 0.0, 1.0 / classes, open_low=True)
    owner = torch.arange(n_informative) % classes  # (n_informative,) class of each column
    g = torch.Generator().manual_seed(seed)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, classes, (n,), generator=g)  # (N,)
        fires = torch.rand(n, n_informative, generator=g) < classes * density
        rare = (fires & (owner == y[:, None])).float()  # (N, n_informative)
        noise = torch.randn(n, n_features - n_informative, generator=g)
        return torch.cat([rare, noise], dim=1), y  # (N, n_features), (N,)

    x_train, y_train = make(n_train)
    x_test, y_test = make(n_test)
    q = (1 - classes * density) ** torch.bincount(owner, minlength=classes).double()  # (K,)
    best = ((1 - q).sum() + q.max()).item() / classes
    return Task(
        name="sparse_features",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        loss="cross_entropy",
        metric="accuracy",
        input_shape=(n_features,),
        output_size=classes,
        description=(
            f"{n_informative} rare informative features (density {density:g}) among "
            f"{n_features - n_informative} dense noise features: chance accuracy "
            f"{1 / classes:.3f}, best possible {best:.3f}."
        ),
    )

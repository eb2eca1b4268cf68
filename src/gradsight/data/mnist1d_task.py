"""MNIST-1D (Greydanus 2020): ten 1D digit templates, shifted, scaled, sheared and noised.

Named `mnist1d_task` so that it does not shadow the `mnist1d` package it wraps.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from gradsight.checks import check_elements, check_float, check_int
from gradsight.data.task import Task
from gradsight.errors import InputError


def mnist1d(
    seed: int = 0, num_samples: int = 5000, train_split: float = 0.8, shuffle_seq: bool = False
) -> Task:
    """MNIST-1D, generated locally with `mnist1d.data.make_dataset` (never downloaded).

    Greydanus, "Scaling down deep learning", 2020 (arXiv:2011.14439). Each example is one of
    ten 12-point templates, padded, randomly translated, scaled and sheared, with correlated
    and i.i.d. noise, resampled to 40 points. The package's default generation arguments are
    used with its seed set to ours, so seed 42 gives the published dataset. The package seeds
    numpy's and Python's global generators itself; their states are restored afterwards.
    Note that `make_dataset` already centres and scales the whole set (train and test
    together) to mean 0 and std 1, so even the raw inputs are roughly standardized.

    Args:
        seed: Seed passed to the generator.
        num_samples: Total number of examples (train + test), a positive multiple of 10
            (the package draws num_samples // 10 per class).
        train_split: Fraction of the examples used for training, in (0, 1).
        shuffle_seq: Permute the 40 positions with one fixed permutation (destroys the
            locality a CNN relies on; an MLP does not care).

    Returns:
        A cross-entropy/accuracy Task with inputs (N, 40) and int64 labels 0..9.
    """
    num_samples = check_int("num_samples", num_samples, 10)
    check_elements("mnist1d num_samples x 40 inputs", num_samples, 40)
    if num_samples % 10:
        raise InputError(f"num_samples must be a multiple of 10 (10 classes), got {num_samples}")
    train_split = check_float("train_split", train_split, 0.0, 1.0, open_low=True, open_high=True)
    n_train = int(num_samples * train_split)  # the package's own rule
    if not 0 < n_train < num_samples:
        raise InputError(f"train_split={train_split} leaves an empty split of {num_samples}")
    if not isinstance(shuffle_seq, bool):
        raise InputError(f"shuffle_seq must be a bool, got {shuffle_seq!r}")

    # Imported here: the package pulls in matplotlib and requests at import time.
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.train_split, args.shuffle_seq = num_samples, train_split, shuffle_seq
    args.seed = seed
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)  # never get_dataset: it downloads and writes a pickle to cwd
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return Task(
        name="mnist1d",
        x_train=torch.as_tensor(data["x"], dtype=torch.float32),
        y_train=torch.as_tensor(data["y"], dtype=torch.int64),
        x_test=torch.as_tensor(data["x_test"], dtype=torch.float32),
        y_test=torch.as_tensor(data["y_test"], dtype=torch.int64),
        loss="cross_entropy",
        metric="accuracy",
        input_shape=(40,),
        output_size=10,
        description=(
            "MNIST-1D, 10 balanced classes of 40-point signals: chance accuracy 0.10 (the paper: "
            "logistic regression 0.32, MLP 0.68, CNN 0.94)."
        ),
    )

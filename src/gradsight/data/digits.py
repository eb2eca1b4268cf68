"""scikit-learn's 8x8 handwritten digits, flattened: a small real image problem."""

from __future__ import annotations

import torch

from gradsight.checks import check_float
from gradsight.data.task import Task


def digits(seed: int = 0, test_fraction: float = 0.2) -> Task:
    """The UCI optical digits as shipped with scikit-learn (`load_digits`, 1797 images).

    Each 8x8 image is flattened to 64 pixel intensities in 0..16 (a CNN reshapes to
    (1, 8, 8) itself). The split is stratified by class and drawn with `seed`; nothing is
    downloaded. Several border pixels are zero in every image: standardization leaves them 0.

    Args:
        seed: Seed of the stratified train/test split.
        test_fraction: Fraction of the images held out for testing, in (0, 1).

    Returns:
        A cross-entropy/accuracy Task with inputs (N, 64) and int64 labels 0..9.
    """
    # scikit-learn (and the SciPy it loads) costs about a second to import: only when used.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    check_float("test_fraction", test_fraction, 0.0, 1.0, open_low=True, open_high=True)
    data = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=test_fraction, stratify=data.target, random_state=seed
    )
    return Task(
        name="digits",
        x_train=torch.as_tensor(x_train, dtype=torch.float32),
        y_train=torch.as_tensor(y_train, dtype=torch.int64),
        x_test=torch.as_tensor(x_test, dtype=torch.float32),
        y_test=torch.as_tensor(y_test, dtype=torch.int64),
        loss="cross_entropy",
        metric="accuracy",
        input_shape=(64,),
        output_size=10,
        description=(
            "8x8 handwritten digits (scikit-learn), 10 balanced classes: chance accuracy about "
            "0.10; logistic regression reaches about 0.96."
        ),
    )

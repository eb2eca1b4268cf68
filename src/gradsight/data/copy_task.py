"""The copy (memory) task: recall a few symbols after a long stretch of blanks."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from gradsight.checks import check_elements, check_int
from gradsight.data.task import IGNORE_INDEX, Task


def copy_task(
    seed: int = 0,
    length: int = 20,
    n_symbols: int = 8,
    memory: int = 10,
    n_train: int = 5000,
    n_test: int = 1000,
) -> Task:
    """The copy task (Hochreiter & Schmidhuber 1997; in the form of Arjovsky et al. 2016).

    Tokens: 0 is the blank, 1..n_symbols are the symbols, n_symbols + 1 is the delimiter.
    A sequence is `memory` symbols drawn uniformly, then `length` blanks, then the delimiter,
    then `memory` blanks: T = 2·memory + length + 1 steps, given one-hot, (N, T, n_symbols+2).
    The target (N, T) holds the `memory` symbols at the last `memory` steps and `IGNORE_INDEX`
    everywhere else, so only the recall is scored. The output alphabet is the input one
    (output_size = n_symbols + 2, class index = token) although only 1..n_symbols are ever
    targets. A model without memory can only guess: accuracy 1/n_symbols and cross-entropy
    log(n_symbols) (Arjovsky et al.'s memoryless baseline).

    Args:
        seed: Seed of the local generator.
        length: Number of blanks between the symbols and the delimiter (the delay), >= 0.
        n_symbols: Size of the symbol alphabet, >= 1.
        memory: Number of symbols to remember, >= 1.
        n_train: Number of training sequences.
        n_test: Number of test sequences.

    Returns:
        A cross-entropy/accuracy Task with inputs (N, T, n_symbols+2) and int64 targets (N, T).
    """
    length, memory = check_int("length", length, 0), check_int("memory", memory, 1)
    n_symbols = check_int("n_symbols", n_symbols, 1)
    n_train, n_test = check_int("n_train", n_train, 1), check_int("n_test", n_test, 1)
    total = 2 * memory + length + 1
    check_elements(
        "copy (n_train + n_test) x steps x symbols", n_train + n_test, total, n_symbols + 2
    )
    delimiter = n_symbols + 1
    g = torch.Generator().manual_seed(seed)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        symbols = torch.randint(1, n_symbols + 1, (n, memory), generator=g)  # (N, memory)
        tokens = torch.zeros(n, total, dtype=torch.int64)  # (N, T), all blank
        tokens[:, :memory] = symbols
        tokens[:, memory + length] = delimiter
        x = F.one_hot(tokens, n_symbols + 2).float()  # (N, T, n_symbols+2)
        y = torch.full((n, total), IGNORE_INDEX, dtype=torch.int64)  # (N, T)
        y[:, -memory:] = symbols
        return x, y

    x_train, y_train = make(n_train)
    x_test, y_test = make(n_test)
    return Task(
        name="copy",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        loss="cross_entropy",
        metric="accuracy",
        input_shape=(total, n_symbols + 2),
        output_size=n_symbols + 2,
        description=(
            f"Copy task, recall {memory} symbols (of {n_symbols}) after {length} blanks: "
            f"guessing scores accuracy 1/{n_symbols} = {1 / n_symbols:.3f} "
            f"(cross-entropy log {n_symbols} = {math.log(n_symbols):.2f})."
        ),
    )

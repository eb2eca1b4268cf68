"""The lab's shape: short functions, and every experiment split into measure, claims, figures.

Parsed with `ast`, like tests/test_architecture.py: a function's length is its lines from
`def` (decorators excluded) to its last statement, docstring included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gradsight.lab

LAB = Path(gradsight.lab.__file__).parent
MAX_LINES = 60
# Functions not yet split, by "module.function": this list only shrinks.
NOT_YET_SPLIT: set[str] = {
    "hessian_lr.run",
    "lamb_large_batch.run",
    "learning_rate.run",
    "pretraining.run",
    "saddle.run",
}


def _function_lengths() -> dict[str, int]:
    """Lines of every function and method in the lab's modules, by "module.name"."""
    lengths = {}
    for file in sorted(LAB.glob("*.py")):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                key = f"{file.stem}.{node.name}"
                lengths[key] = max(lengths.get(key, 0), node.end_lineno - node.lineno + 1)
    return lengths


LENGTHS = _function_lengths()


def test_no_function_is_longer_than_the_limit():
    long = {k: n for k, n in LENGTHS.items() if n > MAX_LINES and k not in NOT_YET_SPLIT}
    assert not long, f"functions over {MAX_LINES} lines: {long}"


def test_the_list_of_unsplit_functions_only_shrinks():
    assert all(LENGTHS.get(k, 0) > MAX_LINES for k in NOT_YET_SPLIT), "remove it from the list"


@pytest.mark.parametrize("name", sorted(gradsight.lab.EXPERIMENTS))
def test_split_experiments_declare_their_parts(name):
    experiment = gradsight.lab.EXPERIMENTS[name]
    module = experiment.run.__module__ if experiment.measure is None else None
    if module is not None and f"{module.rsplit('.', 1)[1]}.run" in NOT_YET_SPLIT:
        pytest.skip("not yet split")
    assert experiment.measure and experiment.claims and experiment.figures

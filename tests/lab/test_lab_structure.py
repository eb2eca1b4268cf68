"""The lab's shape: short functions, and every experiment split into measure, claims, figures.

Parsed with `ast`, like tests/test_architecture.py: a function's length is its lines from
`def` (decorators excluded) to its last line, docstring included.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import gradsight.lab
from gradsight.lab import EXPERIMENTS
from gradsight.lab.claims import ClaimSpec

LAB = Path(gradsight.lab.__file__).parent
MAX_LINES = 60


def _function_lengths() -> dict[str, int]:
    """Lines of every function and method in the lab's modules, by "module.name"."""
    lengths = {}
    for file in sorted(LAB.glob("*.py")):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                key = f"{file.stem}.{node.name}"
                lengths[key] = max(lengths.get(key, 0), node.end_lineno - node.lineno + 1)
    return lengths


def test_no_function_is_longer_than_the_limit():
    lengths = _function_lengths()
    assert lengths, f"no functions found under {LAB}"
    long = {k: n for k, n in lengths.items() if n > MAX_LINES}
    assert not long, f"functions over {MAX_LINES} lines: {long}"


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_experiment_declares_its_parts(name):
    experiment = EXPERIMENTS[name]
    assert experiment.measure and experiment.claims and experiment.figures
    module = experiment.measure.__module__
    assert experiment.claims.__module__ == experiment.figures.__module__ == module


def _specs(name: str) -> list[ClaimSpec]:
    module = importlib.import_module(EXPERIMENTS[name].measure.__module__)
    return [v for v in vars(module).values() if isinstance(v, ClaimSpec)]


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_claim_specs_have_unique_names(name):
    specs = _specs(name)
    assert specs, f"{name} states no ClaimSpec"
    assert len({s.name for s in specs}) == len(specs)


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_claim_names_its_control(name):
    for spec in _specs(name):
        varied, _, fixed = spec.control.partition("; fixed: ")
        assert varied.startswith("varied: ") and len(varied) > len("varied: "), spec.name
        assert fixed, f"{spec.name}: control names nothing held fixed: {spec.control!r}"

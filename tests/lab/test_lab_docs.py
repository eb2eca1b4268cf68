"""scripts/lab_docs.py: the README's lab table, built from a lab run's results."""

import importlib.util
from pathlib import Path

import pytest

from gradsight.lab import EXPERIMENTS

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "lab_docs.py"


@pytest.fixture(scope="module")
def lab_docs():
    spec = importlib.util.spec_from_file_location("lab_docs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_row_and_one_figure_per_experiment(small_lab, lab_docs, tmp_path):
    config, results = small_lab
    body = lab_docs.table(config.out_dir, tmp_path / "docs" / "lab", tmp_path, full=False)
    rows = body.splitlines()[2:]
    assert [row.split("|")[1].strip(" `") for row in rows] == list(results)
    for name, row in zip(results, rows, strict=True):
        assert (tmp_path / "docs" / "lab" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert f'src="docs/lab/{name}.png"' in row
        held = sum(c.held for c in results[name].claims)
        assert f"{held} of {len(results[name].claims)}" in row
        for claim in results[name].claims:
            if claim.second_look:  # every claim that did not hold, with its second look
                assert f"*Second look:* {lab_docs._cell(claim.second_look)}" in row
    assert set(results) <= set(EXPERIMENTS)


def test_quick_results_are_refused_for_the_docs(small_lab, lab_docs, tmp_path):
    config, _ = small_lab
    with pytest.raises(SystemExit, match="quick mode"):
        lab_docs.table(config.out_dir, tmp_path, tmp_path)


# The old table's text: a word no claim's sentence, verdict or second look contains.
STALE = "stale-table-row"


def test_the_readme_block_is_replaced_and_the_rest_kept(small_lab, lab_docs, tmp_path):
    config, _ = small_lab
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n<!-- lab-table -->\n{STALE}\n<!-- /lab-table -->\noutro\n")
    with pytest.raises(SystemExit, match="quick mode"):  # nothing written on refusal
        lab_docs.main([str(config.out_dir), "--readme", str(readme)])
    assert STALE in readme.read_text()
    figures = tmp_path / "figures"
    args = [str(config.out_dir), "--readme", str(readme), "--figures", str(figures)]
    lab_docs.main([*args, "--allow-quick"])
    text = readme.read_text()
    assert text.startswith("intro\n<!-- lab-table -->\n| experiment |")
    assert text.endswith("<!-- /lab-table -->\noutro\n")
    assert STALE not in text

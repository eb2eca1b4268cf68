"""A fast start-up, checked by what gets imported (not by timing): `import gradsight` loads no
subpackage, the names a training script reaches first load no plotting, HTML or sklearn, and
the CLI module loads neither torch nor pandas; every public name still resolves."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest

import gradsight

# Slow imports none of `import gradsight`, the training names or `--help` may bring in.
HEAVY = [
    "sklearn",
    "scipy",
    "pandas",
    "matplotlib",
    "jinja2",
    "torch._dynamo",
    "transformers",
    "lightning",
    "tensorboard",
    "wandb",
    "mlflow",
]


def loaded_after(code: str, modules: list[str]) -> list[str]:
    """Which of `modules` a fresh interpreter holds in sys.modules after running `code`."""
    probe = (
        f"{code}\nimport json, sys\nprint(json.dumps([m for m in {modules!r} if m in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_gradsight_loads_no_subpackage():
    loaded = loaded_after(
        "import gradsight", [*HEAVY, "torch", "numpy", "rich", "gradsight.telemetry"]
    )
    assert loaded == []


def test_training_names_load_no_plotting_html_or_sklearn():
    code = "import gradsight as gs\ngs.fit, gs.watch, gs.diagnose, gs.models, gs.data, gs.optim"
    code += ", gs.curvature, gs.History, gs.Task, gs.lr_find"
    loaded = loaded_after(code, [m for m in HEAVY if m != "pandas"] + ["torch"])
    assert loaded == ["torch"]  # the probe itself sees that the names were really imported


def test_cli_module_loads_no_torch():
    loaded = loaded_after("import gradsight.cli", [*HEAVY, "torch", "numpy", "gradsight.config"])
    assert loaded == []


@pytest.mark.parametrize("name", gradsight.__all__)
def test_every_public_name_resolves(name):
    value = getattr(gradsight, name)
    assert value is not None
    assert name in dir(gradsight)
    if name in gradsight._SUBPACKAGES:
        assert isinstance(value, types.ModuleType) and value.__name__ == f"gradsight.{name}"


def test_doctor_and_report_stay_functions_after_submodule_imports():
    # Importing a submodule binds its subpackage on the parent; the public names must win.
    import gradsight.cli.doctor
    import gradsight.report.html
    from gradsight.doctor.core import doctor
    from gradsight.report import report

    assert gradsight.doctor is doctor and gradsight.report is report
    assert isinstance(gradsight.export, types.ModuleType)  # gs.export.tensorboard(...)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        gradsight.nope

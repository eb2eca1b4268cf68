"""The package layers: every import points down, and no package imports another's private module.

The layers are those of docs/architecture.md. Imports under `if TYPE_CHECKING:` are for
annotations only and are not edges; imports inside functions are.
"""

from __future__ import annotations

import ast
from pathlib import Path

import gradsight

ROOT = Path(gradsight.__file__).parent

# Lowest first; a package may import the packages of lower layers, and its own modules.
LAYERS = [
    {"_version", "errors"},
    {"files", "run_files", "progress", "stop_signals", "executor", "example_configs",
     "checks", "stats", "drawing"},
    {"data", "models"},
    {"curvature"},
    {"optim"},
    {"telemetry"},
    {"train"},
    {"config", "diagnosis"},
    {"remedies", "playground"},
    {"report"},
    {"doctor"},
    {"lab"},
    {"integrations"},
    {"cli", "zoo"},  # zoo: models and loops written as users write them, on the front door
]  # fmt: skip
LAYER = {package: level for level, packages in enumerate(LAYERS) for package in packages}
TOP = {"__init__", "__main__"}  # the package's front doors may import anything
LAYER["__init__"] = len(LAYERS) - 1  # `import gradsight as gs`: for the top layer only


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every `gradsight.*` import outside `if TYPE_CHECKING:` blocks."""
    found = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "gradsight":  # a subpackage, or a name of the front door
                found.extend(
                    (node.lineno, f"gradsight.{a.name if a.name in LAYER else '__init__'}")
                    for a in node.names
                )
            elif node.module.startswith("gradsight."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend(
                (node.lineno, a.name) for a in node.names if a.name.startswith("gradsight.")
            )
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _edges() -> list[tuple[str, int, str, str]]:
    """(file, line, importing package, imported module) for every import across packages;
    the library's command line (`cli`) is a package like the others."""
    edges = []
    for file in sorted(ROOT.rglob("*.py")):
        package = file.relative_to(ROOT).with_suffix("").parts[0]
        for line, module in _imports(ast.parse(file.read_text(encoding="utf-8"))):
            target = module.split(".")[1]
            if target != package:
                edges.append((str(file.relative_to(ROOT)), line, package, module))
    return edges


EDGES = _edges()


def test_every_package_and_module_has_a_layer():
    modules = {path.stem for path in ROOT.glob("*.py")}
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    assert (modules | packages) - TOP == set(LAYER) - TOP


def test_imports_point_down():
    upward = [
        f"{file}:{line} ({package}) imports {module}"
        for file, line, package, module in EDGES
        if package not in TOP and LAYER[module.split(".")[1]] >= LAYER[package]
    ]
    assert upward == []


def test_no_package_imports_another_packages_private_module():
    private = [
        f"{file}:{line} imports {module}"
        for file, line, _, module in EDGES
        if any(part.startswith("_") and part != "__init__" for part in module.split(".")[2:])
        or (module.split(".")[1].startswith("_") and module != "gradsight._version")
    ]
    assert private == []

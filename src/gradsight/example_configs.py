"""The run configs shipped in the package (`gradsight/examples/*.toml`), by name.

Read through `importlib.resources`, so they are found in a wheel install as in a source
checkout: `gradsight train digits_sigmoid_deep` runs the packaged example when no file of
that name exists. `gradsight examples` lists them with their descriptions.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib
if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

SUFFIX = ".toml"


def _folder() -> Traversable:
    return resources.files("gradsight").joinpath("examples")


def example_names() -> list[str]:
    """Names of the packaged example configs, sorted."""
    return sorted(
        entry.name.removesuffix(SUFFIX)
        for entry in _folder().iterdir()
        if entry.name.endswith(SUFFIX) and entry.is_file()
    )


def example_config(name: str) -> Traversable:
    """The packaged config `name` (with or without ".toml"); KeyError naming the others when
    there is none."""
    entry = _folder().joinpath(name.removesuffix(SUFFIX) + SUFFIX)
    if not entry.is_file():
        raise KeyError(f"no packaged example {name!r}; the examples: {', '.join(example_names())}")
    return entry


def describe(name: str) -> str:
    """A packaged example's one-line description: its `description`, else its first comment."""
    text = example_config(name).read_text(encoding="utf-8")
    description = tomllib.loads(text).get("description")
    if isinstance(description, str):
        return description
    comments = [line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")]
    return comments[0] if comments else ""


def catalog() -> dict[str, str]:
    """`{name: description}` of every packaged example."""
    return {name: describe(name) for name in example_names()}


def resolve_config(config: str | Path) -> Path | Traversable | None:
    """Where a config argument points: the file when it exists, else the packaged example of
    that name when the argument is a bare name (no folder; ".toml" optional), else None."""
    path = Path(config)
    if path.is_file():
        return path
    if path.parent != Path(".") or path.suffix not in ("", SUFFIX):
        return None
    try:
        return example_config(path.name)
    except KeyError:
        return None

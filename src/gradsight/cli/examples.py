"""`gradsight examples`: the packaged configs by name with their one-line descriptions, or
one config's TOML to copy (`gradsight examples --show NAME > mine.toml`)."""

from __future__ import annotations

import typer
from rich.console import Console

from gradsight.cli.console import make_table, print_table
from gradsight.errors import InputError
from gradsight.example_configs import catalog, example_config


def examples_command(show: str | None = None) -> int:
    """Print the catalogue (or one example's TOML); returns the exit status (0).

    Raises:
        InputError: `show` names no packaged example.
    """
    if show is not None:
        try:
            typer.echo(example_config(show).read_text(encoding="utf-8"), nl=False)
        except KeyError as error:
            raise InputError(error.args[0]) from None
        return 0
    table = make_table(["example", "what it trains"], title="Packaged examples")
    for name, description in catalog().items():
        table.add_row(name, description)
    console = Console()
    print_table(console, table)
    console.print("Run one by name: gradsight train NAME (also lr-find NAME, doctor NAME).")
    return 0

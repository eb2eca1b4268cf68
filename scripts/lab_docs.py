"""Copy each experiment's main figure to docs/lab/ and write the README's lab table.

Run after a full-mode lab run (`make lab-docs` does both):

    gradsight lab run all --workers 2 --out build/lab
    python scripts/lab_docs.py build/lab

The table lies between the README's `<!-- lab-table -->` and `<!-- /lab-table -->` lines; it
is rebuilt from every experiment's results.json (its first figure, the verdicts of its
central claims and of every claim that did not hold, with the second look at each that did
not, how many held), so the README says what the last full run measured.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from gradsight.lab.registry import EXPERIMENTS

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- lab-table -->", "<!-- /lab-table -->"
FIGURE_WIDTH = 360


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _verdict(claim: dict) -> str:
    """One claim's line: verdict, statement, what was measured, and its second look if any."""
    line = (
        f"**{'held' if claim['held'] else 'not held'}**{' (central)' if claim['central'] else ''}: "
        f"{_cell(claim['statement'])} ({_cell(claim['verdict'])})"
    )
    look = claim.get("second_look", "")
    return f"{line} *Second look:* {_cell(look)}" if look else line


def table(run: Path, figures: Path, root: Path = ROOT, full: bool = True) -> str:
    """The markdown table of the experiments in `run`, copying their first figures.

    Args:
        run: A lab run's --out folder.
        figures: Where NAME.png go.
        root: What the figures' links are relative to (the README's folder).
        full: Refuse results of quick mode (the docs show full mode).
    """
    names = [name for name in EXPERIMENTS if (run / name / "results.json").exists()]
    if not names:
        raise SystemExit(f"no experiment results under {run}")
    figures.mkdir(parents=True, exist_ok=True)
    rows = [
        "| experiment | figure (full mode) | central claims, and claims not held | claims held |",
        "|---|---|---|---|",
    ]
    for name in names:
        results = json.loads((run / name / "results.json").read_text())
        if full and results["mode"] != "full":
            raise SystemExit(f"{name}: results are from {results['mode']} mode; run full mode")
        figure = ""
        if results["figures"]:
            target = figures / f"{name}.png"
            shutil.copyfile(run / name / results["figures"][0], target)
            figure = f'<img src="{target.relative_to(root).as_posix()}" width="{FIGURE_WIDTH}">'
        claims = results["claims"]
        # The central claims, and every claim that did not hold: the honest part of a verdict.
        shown = [c for c in claims if c["central"] or not c["held"]]
        verdicts = "<br>".join(_verdict(c) for c in shown)
        held = sum(c["held"] for c in claims)
        rows.append(
            f"| `{name}` | {figure} | {verdicts} | {held} of {len(claims)}, "
            f"{results['seeds']} seeds, {results['elapsed_s']:.0f} s |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the --out folder of a full-mode lab run")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--figures", type=Path, default=ROOT / "docs" / "lab")
    parser.add_argument(
        "--allow-quick", action="store_true", help="accept quick-mode results (a dry run)"
    )
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    if START not in text or END not in text:
        sys.exit(f"{args.readme} has no {START} ... {END} block")
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    body = table(
        args.run, args.figures.resolve(), args.readme.resolve().parent, not args.allow_quick
    )
    args.readme.write_text(f"{before}{START}\n{body}\n{END}{after}")
    print(f"wrote {len(body.splitlines()) - 2} rows to {args.readme}")


if __name__ == "__main__":
    main()

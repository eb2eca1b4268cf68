"""The LR range test of a run config (`gradsight lr-find CONFIG`), without the CLI framework."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gradsight.config import load_config, prepare
from gradsight.train import LRFindResult, lr_find


def lr_find_from_config(
    config: str | Path,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_it: int = 100,
) -> tuple[LRFindResult, Path]:
    """Build the config's task and model, run `lr_find` with its [train] optimizer, save the plot.

    The optimizer, momentum, weight_decay, optimizer_options, batch_size and seed come from the
    config's [train] section (its lr is what the test replaces).

    Args:
        config: A TOML run config (as for `gradsight train`).
        overrides: `--set section.key=value` overrides.
        out: The PNG to write (default `<config name>-lr-find.png` in the current folder).
        start_lr: First learning rate of the test.
        end_lr: Last learning rate of the test.
        num_it: Steps of the test.

    Returns:
        The result and the path of the PNG.

    Raises:
        ConfigError: The config is invalid (one line naming the key).
        ValueError: A bad argument of the test (one line with the value).
    """
    prepared = prepare(load_config(config, list(overrides)))
    train = prepared.fit_args
    result = lr_find(
        prepared.model,
        prepared.task,
        optimizer=train.get("optimizer", "sgd"),
        start_lr=start_lr,
        end_lr=end_lr,
        num_it=num_it,
        batch_size=train.get("batch_size"),
        momentum=train.get("momentum", 0.0),
        weight_decay=train.get("weight_decay", 0.0),
        optimizer_options=train.get("optimizer_options"),
        seed=train.get("seed", 0),
        device=train.get("device", "cpu"),
    )
    path = Path(out) if out is not None else Path(f"{prepared.name}-lr-find.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    result.plot().savefig(path)
    return result, path


def describe(result: LRFindResult) -> str:
    """One line: the suggestions and how the test ended."""
    ended = "stopped early: the loss blew up" if result.stopped_early else "reached end_lr"
    return (
        f"suggested lr {result.suggestion:.3g} (valley); steep {result.steep:.3g}, "
        f"minimum {result.minimum:.3g}; {len(result.lrs)} steps, {ended}"
    )

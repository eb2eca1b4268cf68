"""A remedy as an edit of a run config (TOML), shown as a diff:

```
  [model]
- activation = "sigmoid"
+ activation = "relu"
```

Training and task changes are read off the `Treatment` (its settings and its task's options
against the baseline's). A model change is a builder keyword (`MODEL_KEYS`), kept only when
the model built from the edited config has the same modules, in order, as the treated model;
otherwise the remedy has no config form and its code snippet (`Treatment.changes`) stands.
"""

from __future__ import annotations

import inspect
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torch import nn

from gradsight import models
from gradsight.config import build_model
from gradsight.data.task import Task
from gradsight.remedies import NotApplicable, Treatment, apply_remedies
from gradsight.train import fit

if TYPE_CHECKING:
    from gradsight.doctor import Prescription

# The builder keyword that makes each model remedy's change (gs.models.mlp/cnn/resnet/rnn).
MODEL_KEYS: dict[str, dict[str, Any]] = {
    "relu_activation": {"activation": "relu"},
    "leaky_relu_activation": {"activation": "leaky_relu"},
    "elu_activation": {"activation": "elu"},
    "he_init": {"init": "he_normal"},
    "glorot_init": {"init": "xavier_uniform"},
    "batch_norm": {"norm": "batch"},
    "lstm_cell": {"cell": "lstm"},
    "residual_connections": {"residual": True},
}
# Marks a key the config does not set (its value is the default).
UNSET = object()


@dataclass(frozen=True)
class KeyChange:
    """One config key set to a new value; `old` is `UNSET` when the config leaves it out."""

    section: str
    key: str
    old: Any
    new: Any


def toml_value(value: Any) -> str:
    """A value as TOML writes it: true, "relu", 0.01, 1.0, 1e-05, [1, 2], and inline tables
    such as { warmup_fraction = 0.1 } (`lr_warmup`'s schedule_options)."""
    if isinstance(value, dict):
        items = ", ".join(f"{_toml_key(str(k))} = {toml_value(v)}" for k, v in value.items())
        return f"{{ {items} }}" if items else "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        text = repr(value)  # the shortest text that reads back as the same float
        return text if any(c in text for c in ".en") or not math.isfinite(value) else text + ".0"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string is a JSON string for plain text
    return str(value)


def _toml_key(key: str) -> str:
    """A bare key when TOML allows one (letters, digits, _ and -), else a quoted one."""
    return key if key and all(c.isalnum() or c in "_-" for c in key) else json.dumps(key)


def _fit_default(key: str) -> Any:
    parameter = inspect.signature(fit).parameters.get(key)
    return UNSET if parameter is None else parameter.default


def config_changes(
    config: dict[str, Any],
    treatment: Treatment,
    settings: dict[str, Any],
    task: Task,
    model: nn.Module,
) -> list[KeyChange] | None:
    """What to set in `config` for the run to train as `treatment` does, or None.

    Args:
        config: The run config (`gradsight.config.load_config`).
        treatment: The remedies applied to the config's model, settings and task.
        settings: The baseline's training settings the treatment started from.
        task: The config's task.
        model: The config's model, as the treatment received it.

    Returns:
        The key changes, [task] then [model] then [train]; None when one of the changes has
        no config form.
    """
    sections = {name: dict(config.get(name) or {}) for name in ("task", "model", "train")}
    changes: list[KeyChange] = []

    def change(section: str, key: str, new: Any) -> None:
        changes.append(KeyChange(section, key, sections[section].get(key, UNSET), new))

    if treatment.task is not task:
        differing = {
            k: v for k, v in treatment.task.options.items() if task.options.get(k, UNSET) != v
        }
        if not differing:  # the data changed in a way no task option says
            return None
        for key, value in differing.items():
            change("task", key, value)

    model_keys: dict[str, Any] = {}
    for name in treatment.names:
        model_keys.update(MODEL_KEYS.get(name, {}))
    if model_keys:
        if not _same_modules(sections["model"], model_keys, treatment, task):
            return None
        for key, value in model_keys.items():
            if sections["model"].get(key, UNSET) != value:
                change("model", key, value)
    elif [type(m) for m in treatment.model.modules()] != [type(m) for m in model.modules()]:
        return None

    for key, value in treatment.settings.items():
        before = settings.get(key, _fit_default(key))
        if value != before:
            if _fit_default(key) is UNSET:
                return None
            change("train", key, value)
    return changes


def _same_modules(
    model_config: dict[str, Any], keys: dict[str, Any], treatment: Treatment, task: Task
) -> bool:
    """Whether the config's builder, given `keys`, builds the treated model's module types."""
    options = dict(model_config)
    kind = options.pop("kind", "mlp")
    builder = models.MODELS.get(kind)
    if builder is None or not set(keys) <= set(inspect.signature(builder).parameters):
        return False
    try:
        rebuilt = build_model(kind, treatment.task, **{**options, **keys})
    except (TypeError, ValueError):
        return False
    return [type(m) for m in rebuilt.modules()] == [type(m) for m in treatment.model.modules()]


def diff_lines(changes: list[KeyChange]) -> list[str]:
    """The changes as diff lines under their section headers (`- old` only for set keys)."""
    lines: list[str] = []
    for section in ("task", "model", "train"):
        keyed = [c for c in changes if c.section == section]
        if keyed:
            lines.append(f"  [{section}]")
        for c in keyed:
            if c.old is not UNSET:
                lines.append(f"- {c.key} = {toml_value(c.old)}")
            lines.append(f"+ {c.key} = {toml_value(c.new)}")
    return lines


def config_diffs(
    prescription: Prescription, config: dict[str, Any], model: nn.Module, task: Task
) -> dict[str, list[str] | None]:
    """Every trial's remedies as diff lines of `config`, None where they have no config form.

    Each remedy is applied again to `model` (the config's model for the first seed) with the
    baseline's settings; a learning rate from `lr_range_test` is the first seed's.
    """
    diffs: dict[str, list[str] | None] = {}
    for name in prescription.trials["remedy"]:
        try:
            treatment = apply_remedies(name.split("+"), model, prescription.settings, task)
        except NotApplicable:
            diffs[name] = None
            continue
        changes = config_changes(config, treatment, prescription.settings, task, model)
        diffs[name] = None if changes is None else diff_lines(changes)
    return diffs

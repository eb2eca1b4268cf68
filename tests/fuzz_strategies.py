"""Hypothesis strategies for the command-line fuzz tests: configs, arguments, damage.

Every training these strategies can describe is tiny: valid sizes are small, and a huge
number only goes where it is rejected or fails at once (an allocation far beyond any
machine), never where it would be a loop count (depth, layers, classes, steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st


@dataclass(frozen=True)
class Raw:
    """TOML text written as is (a date, a malformed value)."""

    text: str


# Keys where a huge number is either rejected or an allocation that fails at once.
HUGE_OK = frozenset(
    {
        "seed",
        "lr",
        "momentum",
        "weight_decay",
        "l1",
        "l2",
        "clip_norm",
        "clip_value",
        "eval_every",
        "batch_size",
        "width",
        "hidden_size",
        "n_train",
        "n_test",
        "steps",
        "epochs",
        "every",
        "updates_every",
        "activations_every",
        "curvature_every",
        "test_fraction",
        "noise",
        "bias_init",
        "dropout",
    }
)
HUGE = [2**40, 2**63 - 1, 2**63, 2**64, 2**100, -(2**63) - 1, 1e300, -1e300, 1e16]

BAD_STRINGS = [
    "",
    "abc",
    "1",
    "-1",
    "2.5",
    "nan",
    "inf",
    "None",
    "true",
    " 3 ",
    "relu\n",
    "é",
    "\x00",
    "[/]",
    "[bold]x",
    "../x",
    "a/b",
    ".",
    "a" * 300,
]
BAD_SCALARS = [
    0,
    -1,
    -7,
    0.5,
    -1.5,
    5e-324,
    math.inf,
    -math.inf,
    math.nan,
    True,
    False,
    Raw("1979-05-27T07:32:00Z"),
    Raw("07:32:00"),
]
BAD_COMPOUNDS = [[], [1, "a"], [[1]], [0.5, 0.5], {}, {"a": 1}, {"every": {"x": []}}]
BAD_DEVICES = ["cuda", "cuda:7", "mps", "meta", "xla", "cpu:-1", "cuda:x", "CPU"]


def bad_value(key: str = "") -> st.SearchStrategy[Any]:
    """A wrong value for `key`: wrong type, negative, non-finite, nested, huge where safe."""
    choices = st.sampled_from(BAD_SCALARS) | st.sampled_from(BAD_STRINGS)
    choices |= st.sampled_from(BAD_COMPOUNDS)
    if key in HUGE_OK:
        choices |= st.sampled_from(HUGE)
    if key == "device":
        choices |= st.sampled_from(BAD_DEVICES)
    return choices


# Valid values, all small: (key, strategy) per section.
TASKS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "digits": {"seed": st.integers(0, 3), "test_fraction": st.sampled_from([0.2, 0.5])},
    "spirals": {
        "seed": st.integers(0, 3),
        "n_train": st.integers(20, 100),
        "n_test": st.integers(10, 50),
        "classes": st.integers(2, 3),
        "noise": st.sampled_from([0.0, 0.2]),
        "turns": st.sampled_from([0.5, 1.0]),
    },
    "adding": {
        "seed": st.integers(0, 3),
        "length": st.integers(3, 8),
        "n_train": st.integers(20, 100),
        "n_test": st.integers(10, 50),
    },
}
SMALL_SEED = st.integers(0, 3)
MODELS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "mlp": {
        "depth": st.integers(1, 4),
        "width": st.integers(1, 16),
        "activation": st.sampled_from(["relu", "tanh", "sigmoid", "gelu", "leaky_relu"]),
        "init": st.sampled_from(["default", "he_normal", "xavier_uniform"]),
        "norm": st.sampled_from(["batch", "layer"]),
        "residual": st.booleans(),
        "dropout": st.sampled_from([0.0, 0.1]),
        "bias_init": st.sampled_from([0.0, 0.1]),
        "seed": SMALL_SEED,
    },
    "rnn": {
        "cell": st.sampled_from(["rnn", "lstm", "gru"]),
        "num_layers": st.integers(1, 2),
        "activation": st.sampled_from(["tanh", "relu"]),
        "seed": SMALL_SEED,
    },
    "cnn": {
        "channels": st.sampled_from([[2], [2, 2]]),
        "kernel_size": st.sampled_from([1, 3]),
        "seed": SMALL_SEED,
    },
}
WATCH = {
    "every": st.integers(1, 2),
    "updates_every": st.integers(1, 2),
    "activations_every": st.integers(1, 2),
    "activation_grads": st.booleans(),
    "histograms": st.booleans(),
    "check_nonfinite": st.booleans(),
    "curvature_every": st.integers(0, 1),
    "curvature_trace": st.booleans(),
    "read_gradients": st.sampled_from(["auto", "step", "backward"]),
}
# Optimizers with settings they take (momentum only where it means something).
OPTIMIZERS = [
    {"optimizer": "sgd"},
    {"optimizer": "sgd", "momentum": 0.9, "nesterov": True},
    {"optimizer": "momentum"},
    {"optimizer": "nag"},
    {"optimizer": "adagrad"},
    {"optimizer": "rmsprop", "momentum": 0.5},
    {"optimizer": "adam", "optimizer_options": {"betas": [0.9, 0.99]}},
    {"optimizer": "adamw", "weight_decay": 1e-4},
    {"optimizer": "lamb"},
]
TRAIN: dict[str, st.SearchStrategy[Any]] = {
    "lr": st.sampled_from([1e-3, 0.01, 0.1]),
    "l1": st.sampled_from([0.0, 1e-4]),
    "l2": st.sampled_from([0.0, 1e-4]),
    "batch_size": st.sampled_from([8, 32, 64]),
    "schedule": st.sampled_from(["constant", "step", "cosine", "cyclic", "one_cycle", "hessian"]),
    "schedule_options": st.sampled_from([{}, {"warmup_steps": 1}]),
    "clip_norm": st.sampled_from([0.5, 1.0]),
    "clip_value": st.sampled_from([0.5, 1.0]),
    "eval_every": st.integers(1, 2),
    "seed": SMALL_SEED,
    "device": st.sampled_from(["cpu", "cpu:0"]),
    "watch": st.booleans() | st.fixed_dictionaries({}, optional=WATCH),
}
UNKNOWN_KEYS = st.sampled_from(["nosuch", "Lr", "flush_every", "run_dir", "model", "x y", "é"])


def one_in(n: int) -> st.SearchStrategy[bool]:
    """True about one time in `n` (integers would favour their bounds, and so True)."""
    return st.sampled_from([False] * (n - 1) + [True])


@st.composite
def section(
    draw: st.DrawFn, valid: dict[str, st.SearchStrategy[Any]], fixed: dict[str, Any]
) -> dict[str, Any]:
    """A table: some valid keys, maybe a wrong value for one of them, maybe an unknown key."""
    keys = draw(st.lists(st.sampled_from(sorted(valid)), unique=True, max_size=4))
    table = dict(fixed)
    table.update({key: draw(valid[key]) for key in keys})
    if draw(one_in(12)):  # one wrong value, on a known key or a fixed one
        key = draw(st.sampled_from(sorted([*valid, *fixed])))
        table[key] = draw(bad_value(key))
    if draw(one_in(16)):
        table[draw(UNKNOWN_KEYS)] = draw(bad_value() | st.integers(0, 3))
    return table


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    """A config as a TOML document's data: mostly valid tables, with occasional damage."""
    task = draw(st.sampled_from(sorted(TASKS)))
    kind = "rnn" if task == "adding" else draw(st.sampled_from(["mlp"] * 4 + ["cnn"]))
    config: dict[str, Any] = {}
    if draw(st.booleans()):
        good = st.sampled_from(["fuzz", "a b", "é", "x.y"])
        config["name"] = draw(st.sampled_from(BAD_STRINGS) if draw(one_in(4)) else good)
    if draw(st.booleans()):
        config["description"] = draw(st.text(max_size=20) | bad_value())
    config["task"] = draw(section(TASKS[task], {"name": task}))
    fixed = (
        {"kind": kind, "hidden_size": draw(st.integers(1, 8))} if kind == "rnn" else {"kind": kind}
    )
    config["model"] = draw(section(MODELS[kind], fixed))
    config["train"] = draw(section(TRAIN, draw(st.sampled_from(OPTIMIZERS))))
    # Whole-table damage: a table that is not one, a missing table, an unknown table.
    damage = draw(st.sampled_from([None] * 20 + [0, 1, 2, 3, 4]))
    if damage == 0:
        config[draw(st.sampled_from(["task", "model", "train"]))] = draw(bad_value())
    elif damage == 1:
        del config[draw(st.sampled_from(["task", "model", "train"]))]
    elif damage == 2:
        config[draw(st.sampled_from(["watch", "Train", "data", "optim"]))] = {"every": 1}
    elif damage == 3:
        config["task"]["name"] = draw(st.sampled_from(["mnist", "Digits", "", "digits "]))
    elif damage == 4:
        config["model"]["kind"] = draw(st.sampled_from(["transformer", "MLP", "", "resnet"]))
    return config


def toml_string(text: str) -> str:
    """`text` as a TOML basic string (control characters escaped, the rest as is)."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def toml_key(key: str) -> str:
    """A bare key where TOML allows one, else a quoted one."""
    bare = key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key)
    return key if bare else toml_string(key)


def toml_value(value: Any) -> str:
    """A value as TOML text (inline arrays and tables; inf and nan as TOML spells them)."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML for {value!r}")


def to_toml(config: dict[str, Any]) -> str:
    """A config's TOML text: plain keys first, then one [table] per dict."""
    lines = [
        f"{toml_key(k)} = {toml_value(v)}" for k, v in config.items() if not isinstance(v, dict)
    ]
    for name, table in config.items():
        if isinstance(table, dict):
            lines.append(f"[{toml_key(name)}]")
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


BROKEN_LINES = [
    "[task",
    "x = ",
    "= 1",
    "[task]",  # a second [task]
    '"unterminated = 1',
    "[[train]]",
    "key = 01",
    "x = 1979-13-45",
    "x = [1, 2",
    "x = {a = 1",
]
BAD_BYTES = [b"\xff", b"\xc3\x28", b"\x80", b"\xed\xa0\x80", b"\x00"]


@st.composite
def config_files(draw: st.DrawFn) -> bytes:
    """A config file's bytes: the TOML of `configs()`, now and then broken or not UTF-8."""
    text = to_toml(draw(configs()))
    damage = draw(st.sampled_from([None] * 25 + [0, 1, 2, 3, 4]))
    if damage == 0:  # a line that is not TOML
        lines = text.splitlines()
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(BROKEN_LINES)))
        text = "\n".join(lines) + "\n"
    elif damage == 1:
        text = text[: draw(st.integers(0, len(text)))]
    data = text.encode("utf-8")
    if damage == 2:  # bytes that are not UTF-8
        where = draw(st.integers(0, len(data)))
        data = data[:where] + draw(st.sampled_from(BAD_BYTES)) + data[where:]
    elif damage == 3:
        data = draw(st.sampled_from([b"", b"\xef\xbb\xbf" + data, text.encode("utf-16")]))
    elif damage == 4:
        data = draw(st.binary(max_size=64))
    return data


SET_PATHS = [
    "train.lr",
    "train.optimizer",
    "train.batch_size",
    "train.eval_every",
    "train.schedule",
    "train.watch",
    "train.watch.every",
    "train.device",
    "train.epochs",
    "model.width",
    "model.depth",
    "model.activation",
    "model.kind",
    "task.name",
    "task.seed",
    "name",
    "description",
]
BAD_SET_PATHS = [
    "",
    " ",
    ".",
    "..",
    "train.",
    ".lr",
    "train..lr",
    "nosuch.key",
    "train.lr.x",
    "task",
    "train",
    "a.b.c.d",
    "train.watch.flush_every",
    "watch.every",
    "é.x",
]
SET_TEXTS = [
    "",
    "abc",
    "0.01",
    "-1",
    "0",
    "nan",
    "inf",
    "-inf",
    "1e400",
    "[1, 2]",
    "[",
    "{every = 0}",
    "{",
    '"abc',
    '"relu"',
    "true",
    "2**3",
    "1979-05-27",
    "=",
    "a=b",
    "é",
]


def set_value_texts(path: str) -> st.SearchStrategy[str]:
    """Text after `=`: rendered TOML values (valid or not) and raw junk."""
    key = path.rpartition(".")[2]
    return st.sampled_from(SET_TEXTS) | bad_value(key).map(toml_value)


GOOD_SETS = [
    "train.lr=0.01",
    "train.lr=1e-3",
    "train.batch_size=16",
    "train.eval_every=1",
    'train.schedule="cosine"',
    "train.watch=true",
    "train.watch.every=2",
    "train.clip_norm=1.0",
    "model.width=8",
    'model.activation="tanh"',
    "task.seed=1",
    "name=fuzzed",
    'description="a run"',
]


@st.composite
def set_overrides(draw: st.DrawFn) -> str:
    """One `--set` argument: a valid one, a known path with a wrong value, a bad path, or no
    `=`."""
    kind = draw(st.sampled_from(range(8)))
    if kind <= 2:
        return draw(st.sampled_from(GOOD_SETS))
    if kind <= 4:
        path = draw(st.sampled_from(SET_PATHS))
        return f"{path}={draw(set_value_texts(path))}"
    if kind <= 6:
        return f"{draw(st.sampled_from(BAD_SET_PATHS))}={draw(st.sampled_from(['1', 'x', '']))}"
    return draw(st.sampled_from(["train.lr", "", "lr0.1", "train.lr:0.1", "-", "--set"]))


# A `train.steps` that is wrong, or valid and tiny: never a long run.
STEPS = st.sampled_from(
    [
        *["0", "-1", "2.5", "1.0", '"2"', "nan", "inf", "true", "[]", "{}", "", "abc"],
        *[str(10**8 + 1), str(2**63), str(2**100), "1e300", "2", "3"],
    ]
)

# JSON values for damaged run.json and findings.json files.
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
STATUSES = st.sampled_from(["finished", "running", "failed", "interrupted", "diverged", ""])
RUN_KEYS = ["status", "config", "metrics", "meta", "versions", "seed", "start_time", "error"]

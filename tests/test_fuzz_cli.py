"""Property-based tests of the command line's contract with its users.

Whatever the config, arguments or run directory, `gradsight` exits 0, 1 (only
`diagnose --fail-on`) or 2; on 2 it prints exactly one line, starting "error:", on stderr,
and leaves no run directory or partial report behind; it never shows a traceback.

Each example runs in-process (typer's CliRunner) in a fresh temporary folder. Select the
long profile with `pytest tests/test_fuzz_cli.py --hypothesis-profile nightly`.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from fuzz_strategies import (
    JSON_VALUES,
    RUN_KEYS,
    STATUSES,
    STEPS,
    config_files,
    one_in,
    set_overrides,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gradsight.cli import app
from gradsight.telemetry import read_run

RUNNER = CliRunner()
PART_GLOB = "part-*.parquet"
BAD_INPUT = 2
# The tests that share the module's finished run go to one xdist worker, which makes it once.
SHARED_RUN = pytest.mark.xdist_group("fuzz_cli")


def share_of_examples(share: float) -> settings:
    """`share` of the loaded profile's max_examples, for a test whose examples cost more."""
    return settings(max_examples=max(1, round(settings.default.max_examples * share)))


@contextmanager
def fresh_folder() -> Iterator[Path]:
    """An empty temporary folder, made the current one until the block ends.

    Made per example: hypothesis runs a test's body many times within one fixture's life.
    """
    previous = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="gradsight-fuzz-") as folder:
        os.chdir(folder)
        try:
            yield Path(folder)
        finally:
            os.chdir(previous)


def invoke(args: list[str]):
    """Run `gradsight ARGS` in-process, warnings shown as a fresh process would show them.

    Changing the filters resets Python's record of warnings already shown, so each call
    prints its warnings once, as its own process would, whatever ran before.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        return RUNNER.invoke(app, args)


def check_contract(result, args: list[str], allowed: tuple[int, ...] = (0, BAD_INPUT)) -> None:
    """The exit status is allowed, nothing escaped, and a bad-input exit says one line.

    An escaped exception is raised again as itself, so that hypothesis tells distinct ones
    apart by where they were raised and reports each.
    """
    shown = f"gradsight {shlex.join(args)} -> exit {result.exit_code}; stderr {result.stderr!r}"
    error = result.exception
    if error is not None and not isinstance(error, SystemExit):
        if hasattr(error, "add_note"):  # Python 3.11
            error.add_note(f"an exception escaped: {shown}")
        raise error
    assert "Traceback (most recent call last)" not in result.output, shown
    assert result.exit_code in allowed, shown
    if result.exit_code == BAD_INPUT:
        lines = result.stderr.removesuffix("\n").split("\n")
        assert len(lines) == 1, f"not one line on stderr: {shown}"
        assert lines[0].startswith("error:") and lines[0][len("error:") :].strip(), shown


def parts(run_dir: Path) -> list[Path]:
    """The metric parts of a run directory, sorted."""
    return sorted((run_dir / "metrics").glob(PART_GLOB))


def set_args(overrides: list[str]) -> list[str]:
    """`--set A --set B ...`."""
    return [arg for override in overrides for arg in ("--set", override)]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A real run of a packaged example, short, with more than one metric part."""
    run_dir = tmp_path_factory.mktemp("fuzz-cli") / "run"
    overrides = ["train.steps=20", "train.eval_every=10"]
    result = RUNNER.invoke(
        app, ["train", "digits_relu_he_adam", "--run-dir", str(run_dir), *set_args(overrides)]
    )
    assert result.exit_code == 0, result.output
    assert len(parts(run_dir)) >= 2
    return run_dir


# 1. Configs and --set overrides.


@st.composite
def train_overrides(draw: st.DrawFn) -> list[str]:
    """A few `--set` overrides, then the run's length: 2 steps, or (one time in four) a value
    that is wrong or tiny. The last --set of a key wins, so no run is long."""
    overrides = draw(st.lists(set_overrides(), max_size=2))
    steps = draw(STEPS) if draw(one_in(4)) else "2"
    return [*overrides, f"train.steps={steps}"]


# Examples these tests found, checked on every run: a table or list where a name goes, sizes
# beyond any machine, an mlp (the default model) on a sequence task.
@example(config=b'[task]\nname = "adding"\n[model]\nkind = []\n', overrides=["train.steps=2"])
@example(config=b'[task]\nname = "digits"\n', overrides=["task.name={}", "train.steps=2"])
@example(config=b'[task]\nname = "spirals"\nn_test = 1099511627776\n', overrides=["train.steps=2"])
@example(
    config=b'[task]\nname = "spirals"\nn_test = 18446744073709551616\n', overrides=["train.steps=2"]
)
@example(config=b'[task]\nname = "adding"\n', overrides=["train.steps=2"])
@given(config=config_files(), overrides=train_overrides())
def test_train_on_a_fuzzed_config_exits_0_or_2_and_leaves_no_run_on_error(config, overrides):
    """`train` runs a config or refuses it in one line; a refused one leaves no run."""
    with fresh_folder() as folder:
        Path("config.toml").write_bytes(config)
        args = ["train", "config.toml", "--run-dir", "run", *set_args(overrides)]
        result = invoke(args)
        check_contract(result, args)
        run_dir = folder / "run"
        if result.exit_code == BAD_INPUT:
            assert not (run_dir / "run.json").exists(), "a refused config left run.json"
            assert not parts(run_dir), "a refused config left metric parts"
            left = sorted(set(os.listdir(folder)) - {"config.toml", "run"})
            assert not left, f"a refused config left {left}"
        else:
            assert read_run(run_dir)["status"] == "finished"


# 2. Command-line arguments.

PATHS = [
    "run",
    "run/",
    "run/run.json",
    "run/metrics",
    "config.toml",
    "notes.txt",
    "empty",
    "missing",
    "missing/deeper",
    "",
    ".",
    "-",
    "digits_relu_he_adam",
    "\udcff",  # a byte that is not UTF-8 in a file name, as Python receives it
]
# The path each command expects: a run directory, or a config.
GOOD_PATHS = {
    "diagnose": ["run"],
    "report": ["run"],
    "lr-find": ["config.toml", "digits_relu_he_adam"],
    "train": ["config.toml", "digits_relu_he_adam", "adding_lstm"],
}
OUT_PATHS = [
    "out/result.html",
    "result.png",
    "empty",
    "notes.txt",
    "notes.txt/x.html",
    "run",
    "missing/deeper/r.png",
    "",
    ".",
]
FLOATS = ["1e-5", "0", "-1", "nan", "inf", "-inf", "abc", "10", "1e-300", "", "1e400"]
OPTIONS = {
    "diagnose": {
        "--fail-on": st.sampled_from(["warning", "critical", "info", "", "WARNING", "x"]),
        "--json": None,
    },
    "report": {"--out": st.sampled_from(OUT_PATHS)},
    "lr-find": {
        "--set": set_overrides(),
        "--out": st.sampled_from(OUT_PATHS),
        "--start-lr": st.sampled_from(FLOATS),
        "--end-lr": st.sampled_from(FLOATS),
        "--num-it": st.sampled_from(["10", "12", "9", "0", "-1", "abc", "2.5", ""]),
    },
    "train": {"--set": set_overrides(), "--run-dir": st.sampled_from([*OUT_PATHS, "fresh"])},
}
JUNK = ["--bogus", "-z", "--", "--help", "--json", "--out", "--set", "---", "--out=", "--json=1"]
# Options that keep a command cheap, put first so that generated ones override them.
CHEAP = {"lr-find": ["--num-it", "10"], "train": ["--set", "train.steps=2"]}
TINY_CONFIG = (
    'name = "tiny"\n[task]\nname = "spirals"\nn_train = 40\nn_test = 20\n'
    "[model]\ndepth = 2\nwidth = 4\n[train]\nsteps = 2\n"
)


@st.composite
def cli_arguments(draw: st.DrawFn) -> list[str]:
    """A command, then its path (now and then none, or two), options (some missing their
    value) and, one time in four, a junk token: mostly arguments that reach the command."""
    command = draw(st.sampled_from([*OPTIONS, "nosuch"]))
    count = draw(st.sampled_from([1] * 8 + [0, 2]))
    good = st.sampled_from(GOOD_PATHS.get(command, PATHS))
    groups = [[draw(good if draw(st.booleans()) else st.sampled_from(PATHS))] for _ in range(count)]
    options = OPTIONS.get(command, {})
    for name in draw(st.lists(st.sampled_from(sorted(options)), max_size=3)) if options else []:
        value = options[name]
        if value is None or draw(one_in(10)):
            groups.append([name])
        else:
            groups.append([name, draw(value)])
    if draw(one_in(4)):
        groups.append([draw(st.sampled_from(JUNK))])
    ordered = draw(st.permutations(groups))
    return [command, *CHEAP.get(command, []), *(arg for group in ordered for arg in group)]


@SHARED_RUN
@example(args=["diagnose"])  # click's usage errors
@example(args=["report", "run", "--out"])
@given(args=cli_arguments())
def test_any_arguments_exit_0_1_or_2_without_a_traceback(finished_run, args):
    """Unknown options, missing arguments, missing paths, files for folders: one line."""
    with fresh_folder():
        shutil.copytree(finished_run, "run")
        Path("config.toml").write_text(TINY_CONFIG, encoding="utf-8")
        Path("notes.txt").write_text("not a run\n", encoding="utf-8")
        Path("empty").mkdir()
        result = invoke(args)
        check_contract(result, args, allowed=(0, 1, BAD_INPUT))
        if result.exit_code == 1:
            assert args[0] == "diagnose" and any(a.startswith("--fail-on") for a in args), args


# 3. Damaged run directories.

RETYPES = [
    "step_string",
    "step_float",
    "step_int32",
    "value_string",
    "value_float32",
    "value_int",
    "value_nulls",
    "name_int",
    "name_large_string",
    "name_dictionary",
    "layer_binary",
    "no_layer",
    "extra_column",
    "renamed_value",
    "reordered",
    "no_rows",
    "only_layers",
    "only_loss",
]
EXTRA_FILES = [
    "notes.txt",
    "figures",
    "findings.json",
    "metrics/notes.txt",
    "metrics/part-abc.parquet",
    "metrics/part-000099.parquet.tmp",
    "metrics/.part-000003.parquet",
    "metrics/part-000003.parquet",
    "metrics/part-1.parquet",
]
PART = st.integers(0, 7)  # which part, modulo how many there are
# No unreadable (permission-denied) files: the tests run as root, which reads them anyway.
FINITE = st.floats(allow_nan=False, allow_infinity=False)
DAMAGE = st.one_of(
    st.tuples(st.just("truncate"), PART, st.floats(0, 1)),
    st.tuples(st.just("garbage"), PART, st.binary(max_size=64)),
    st.tuples(st.just("delete_part"), PART),
    st.tuples(st.just("retype"), PART, st.sampled_from(RETYPES)),
    st.tuples(st.just("values"), PART, st.lists(st.floats() | FINITE, min_size=1, max_size=6)),
    st.tuples(st.just("steps"), PART, st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1)),
    st.tuples(st.just("names"), PART, st.lists(st.text(max_size=6), min_size=1, max_size=4)),
    st.tuples(st.just("run_json"), JSON_VALUES),
    st.tuples(
        st.just("run_json_fields"),
        st.fixed_dictionaries(
            {"status": STATUSES | JSON_VALUES},
            optional={key: JSON_VALUES for key in RUN_KEYS if key != "status"}
            | {"meta": st.fixed_dictionaries({}, optional={"coverage": JSON_VALUES})},
        ),
    ),
    st.tuples(st.just("run_json_bytes"), st.binary(max_size=32)),
    st.tuples(st.just("delete"), st.sampled_from(["run.json", "metrics"])),
    st.tuples(st.just("folder"), st.sampled_from(["run.json", "metrics/part-000099.parquet"])),
    st.tuples(st.just("findings"), JSON_VALUES),
    st.tuples(st.just("extra_file"), st.sampled_from(EXTRA_FILES), st.binary(max_size=32)),
)


def retyped(table: pa.Table, how: str) -> pa.Table:
    """`table` with one column of the wrong type, missing, extra, renamed, or rows dropped."""
    column = {name: table.column(name) for name in table.column_names}
    field, _, kind = how.partition("_")
    if field in ("step", "name", "layer", "value") and field not in column:
        return table  # an earlier damage took the column away
    if how == "no_rows":
        return table.slice(0, 0)
    if how == "only_layers":
        return table.filter(pc.not_equal(column["layer"], ""))
    if how == "only_loss":
        return table.filter(pc.equal(column["name"], "loss"))
    if how == "no_layer":
        return table.drop_columns(["layer"])
    if how == "extra_column":
        return table.append_column("extra", pa.array(range(len(table))))
    if how == "renamed_value":
        return table.rename_columns(["val" if n == "value" else n for n in table.column_names])
    if how == "reordered":
        return table.select(list(reversed(table.column_names)))
    if how == "value_nulls":
        values = [None if i % 2 else v for i, v in enumerate(column["value"].to_pylist())]
        index = table.column_names.index("value")
        return table.set_column(index, "value", pa.array(values, pa.float64()))
    types = {
        "string": pa.string(),
        "float": pa.float64(),
        "int32": pa.int32(),
        "float32": pa.float32(),
        "int": pa.int64(),
        "large_string": pa.large_string(),
        "binary": pa.binary(),
    }
    index = table.column_names.index(field)
    if kind == "dictionary":
        return table.set_column(index, field, pc.dictionary_encode(column[field]))
    if field == "name" and kind == "int":
        return table.set_column(index, field, pa.array(range(len(table))))
    return table.set_column(index, field, pc.cast(column[field], types[kind], safe=False))


def with_column(table: pa.Table, name: str, values: list, kind: pa.DataType) -> pa.Table:
    """`table` with column `name` replaced by `values`, repeated to its length."""
    if len(table) == 0:
        return table
    repeated = [values[i % len(values)] for i in range(len(table))]
    return table.set_column(table.column_names.index(name), name, pa.array(repeated, kind))


def damage(run_dir: Path, original: dict, how: tuple) -> None:
    """Apply one damage to a copied run directory (see `DAMAGE`)."""
    kind, *args = how
    found = parts(run_dir)
    if kind in ("truncate", "garbage", "delete_part", "retype", "values", "steps", "names"):
        if not found:
            return
        part = found[args[0] % len(found)]
        if part.is_dir():
            return
    if kind == "truncate":
        data = part.read_bytes()
        part.write_bytes(data[: int(len(data) * args[1])])
    elif kind == "garbage":
        part.write_bytes(args[1])
    elif kind == "delete_part":
        part.unlink()
    elif kind in ("retype", "values", "steps", "names"):
        try:
            table = pq.read_table(part)
        except (pa.ArrowException, OSError):
            return  # already damaged beyond reading
        if kind == "retype":
            try:
                table = retyped(table, args[1])
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return  # an earlier damage left a column this change cannot take
        elif kind == "values" and "value" in table.column_names:
            table = with_column(table, "value", args[1], pa.float64())
        elif kind == "steps" and "step" in table.column_names:
            table = with_column(table, "step", args[1], pa.int64())
        elif kind == "names" and "name" in table.column_names:
            table = with_column(table, "name", args[1], pa.string())
        pq.write_table(table, part)
    elif kind == "run_json":
        write_json(run_dir / "run.json", args[0])
    elif kind == "run_json_fields":
        write_json(run_dir / "run.json", {**original, **args[0]})
    elif kind == "run_json_bytes":
        replace(run_dir / "run.json").write_bytes(args[0])
    elif kind == "delete":
        remove(run_dir / args[0])
    elif kind == "folder":
        replace(run_dir / args[0]).mkdir(parents=True)
    elif kind == "findings":
        write_json(run_dir / "findings.json", args[0])
    elif kind == "extra_file":
        target = replace(run_dir / args[0])
        if target.parent.is_dir():
            target.write_bytes(args[1])


def remove(path: Path) -> None:
    """Delete a file or folder, if there is one."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def replace(path: Path) -> Path:
    """`path`, emptied of whatever was there, to be written anew."""
    remove(path)
    return path


def write_json(path: Path, value) -> None:
    """Write `value` as JSON at `path`, whatever was there."""
    import json

    replace(path).write_text(json.dumps(value), encoding="utf-8")


@SHARED_RUN
@share_of_examples(0.25)  # a report that is written draws its figures: about 2 s
# Examples this test found, checked on every run: a run.json value of the wrong type, a
# warning or note printed before the error.
@example(
    damages=[("run_json_fields", {"status": "finished", "metrics": True})],
    flags=[],
    out_blocked=False,
)
@example(damages=[("garbage", 0, b""), ("garbage", 1, b"")], flags=[], out_blocked=False)
@example(
    damages=[("run_json_fields", {"status": "running"}), ("findings", [1])],
    flags=[],
    out_blocked=False,
)
@given(
    damages=st.lists(DAMAGE, min_size=1, max_size=3),
    flags=st.lists(st.sampled_from(["--json", "--fail-on=warning", "--fail-on=critical"])),
    out_blocked=one_in(20),
)
def test_damaged_run_directories_exit_0_1_or_2_and_write_whole_reports(
    finished_run, damages, flags, out_blocked
):
    """`report` and `diagnose` on a run directory damaged in up to three ways."""
    original = read_run(finished_run)
    with fresh_folder() as folder:
        run_dir = folder / "run"
        shutil.copytree(finished_run, run_dir)
        for how in damages:
            damage(run_dir, original, how)
        if out_blocked:  # a file where the report's folder should be
            Path("out").write_text("in the way\n", encoding="utf-8")
        page = folder / "out" / "report.html"
        args = ["report", "run", "--out", "out/report.html"]
        result = invoke(args)
        check_contract(result, args)
        if result.exit_code == BAD_INPUT:
            assert not page.exists(), "a refused report left a page behind"
        else:
            text = page.read_text(encoding="utf-8")
            assert text.rstrip().endswith("</html>"), "the report page is incomplete"

        args = ["diagnose", "run", *flags]
        result = invoke(args)
        fails_on = any(flag.startswith("--fail-on") for flag in flags)
        check_contract(result, args, allowed=(0, 1, BAD_INPUT) if fails_on else (0, BAD_INPUT))

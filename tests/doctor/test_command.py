"""`doctor_command`: the CLI's plain function, on a user model and on bad input."""

from __future__ import annotations

import pytest

from gradsight.doctor.command import BAD_INPUT, doctor_command

USER = "tests.doctor.user_model"

# (id, model spec, task spec, words of the one-line error)
BAD = [
    ("no-colon", "tests.doctor.user_model", "digits", "pkg.module:function"),
    ("no-module", "no_such_pkg.mod:build", "digits", "cannot import 'no_such_pkg.mod'"),
    ("no-name", f"{USER}:missing", "digits", "has no 'missing'"),
    ("not-a-model", f"{USER}:not_a_model", "digits", "returned str, not an nn.Module"),
    ("bad-task", f"{USER}:build", "nope", "unknown task 'nope'"),
]


@pytest.mark.parametrize(("model", "task", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_exits_2_with_one_line(model, task, words, capsys) -> None:
    assert doctor_command(model, task, steps=5, seeds=1) == BAD_INPUT
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


def test_user_model_goes_through(capsys) -> None:
    status = doctor_command(
        f"{USER}:build", "digits", lr=0.1, steps=30, seeds=1, remedies=["relu_activation"]
    )
    out = capsys.readouterr().out
    assert status == 0 and "relu_activation" in out and "nn.Sigmoid" in out

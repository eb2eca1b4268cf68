"""`gradsight lr-find CONFIG` without the CLI framework: config in, suggestion and PNG out."""

import pytest

from gradsight.cli.lr_find import describe, lr_find_from_config
from gradsight.config import ConfigError

CONFIG = """
[task]
name = "digits"
seed = 0
[model]
kind = "mlp"
depth = 2
width = 32
seed = 0
[train]
optimizer = "momentum"
batch_size = 64
seed = 0
"""


def test_config_gives_a_suggestion_and_a_plot(tmp_path):
    config = tmp_path / "small.toml"
    config.write_text(CONFIG)
    result, png = lr_find_from_config(config, out=tmp_path / "lr.png", end_lr=1.0, num_it=20)
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert result.options["optimizer"] == "momentum"
    assert 1e-7 <= result.suggestion <= 1.0
    assert describe(result).startswith(f"suggested lr {result.suggestion:.3g} (valley)")


def test_bad_config_is_one_line(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(CONFIG.replace('"momentum"', '"adamax"'))
    with pytest.raises((ConfigError, ValueError), match="unknown optimizer 'adamax'"):
        lr_find_from_config(config, out=tmp_path / "lr.png", num_it=20)

import pytest
from torch import nn

from gradsight.models import NORMS, make_norm

CASES = [
    ("batch", 0, nn.BatchNorm1d),
    ("batch", 1, nn.BatchNorm1d),
    ("batch", 2, nn.BatchNorm2d),
    ("layer", 0, nn.LayerNorm),
    ("layer", 1, nn.GroupNorm),
    ("layer", 2, nn.GroupNorm),
]


@pytest.mark.parametrize("kind,dims,cls", CASES, ids=[f"{k}-{d}d" for k, d, _ in CASES])
def test_make_norm_picks_the_layer_for_the_input_rank(kind, dims, cls):
    norm = make_norm(kind, 6, dims)
    assert type(norm) is cls
    if cls is nn.GroupNorm:  # the layer-norm equivalent for feature maps: one group
        assert (norm.num_groups, norm.num_channels) == (1, 6)


@pytest.mark.parametrize("kind", [None, "none"], ids=["None", "none"])
def test_no_norm_is_none(kind):
    assert make_norm(kind, 6, 0) is None


def test_unknown_norm_lists_the_valid_names():
    with pytest.raises(
        ValueError, match="unknown norm 'group'; choose one of: " + ", ".join(NORMS)
    ):
        make_norm("group", 6, 2)


@pytest.mark.parametrize(
    "num_features,dims,match",
    [(0, 0, "num_features must be an int >= 1, got 0"), (6, 3, "dims must be 0, 1 or 2, got 3")],
    ids=["no-features", "3d"],
)
def test_bad_numbers(num_features, dims, match):
    with pytest.raises(ValueError, match=match):
        make_norm("batch", num_features, dims)

import pytest
from torch import nn

import gradsight.models as models


@pytest.mark.parametrize(
    "kind,kwargs",
    [
        ("mlp", {"in_features": 4, "out_features": 2}),
        ("cnn", {"in_shape": (8, 8), "out_features": 2}),
        ("resnet", {"in_shape": (40,), "out_features": 2, "depth": 1}),
        ("rnn", {"input_size": 2, "hidden_size": 3, "output_size": 1}),
    ],
    ids=["mlp", "cnn", "resnet", "rnn"],
)
def test_build_by_name(kind, kwargs):
    assert isinstance(models.build(kind, **kwargs), nn.Module)


def test_models_registry_names_the_builders():
    expected = {"mlp": models.mlp, "cnn": models.cnn, "resnet": models.resnet, "rnn": models.rnn}
    registry = models.MODELS
    assert registry == expected


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(
        ValueError, match="unknown model 'vit'; choose one of: mlp, cnn, resnet, rnn"
    ):
        models.build("vit")


def test_public_names_exist():
    assert all(hasattr(models, name) for name in models.__all__)

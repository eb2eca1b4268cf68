import numpy as np
import torch
from torch import nn

from gradsight import models
from gradsight.lab.measure import first_last_ratio, output_stds, preactivation_grad_norms


def _net():
    return models.mlp(
        5, 3, depth=3, width=4, activation="sigmoid", init="xavier_normal", seed=0
    ).double()


def test_preactivation_grad_norms_match_a_hand_written_backward():
    model = _net()
    x = torch.randn(7, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    loss_fn = nn.functional.cross_entropy
    norms = preactivation_grad_norms(model, x, y, loss_fn)

    # Reference: the pre-activations as leaves of an explicit forward.
    fc1, fc2, fc3 = model.fc1, model.fc2, model.fc3
    z1 = fc1(x)
    z2 = fc2(torch.sigmoid(z1))
    z3 = fc3(torch.sigmoid(z2))
    grads = torch.autograd.grad(loss_fn(z3, y), (z1, z2, z3))
    expected = [float(g.norm()) for g in grads]
    np.testing.assert_allclose(norms, expected, rtol=1e-12, atol=0)
    assert first_last_ratio(norms) == norms[0] / norms[-1]
    assert all(p.grad is None for p in model.parameters())  # parameter grads left alone


def test_output_stds_of_activations():
    model = _net()
    x = torch.randn(64, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    stds = output_stds(model, x, nn.Sigmoid)
    with torch.no_grad():
        h1 = torch.sigmoid(model.fc1(x))
        h2 = torch.sigmoid(model.fc2(h1))
    np.testing.assert_allclose(stds, [float(h1.std()), float(h2.std())], rtol=1e-6)

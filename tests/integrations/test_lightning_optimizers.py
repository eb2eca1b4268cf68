"""GradsightCallback with two optimizers stepping in one training_step (manual optimization)."""

import io
import warnings

import numpy as np
import pytest
import torch
from torch import nn

pl = pytest.importorskip("lightning.pytorch")
from rich.console import Console  # noqa: E402

from gradsight.integrations.lightning import GradsightCallback  # noqa: E402

STEPS, BATCH = 4, 16
LR_ENCODER, LR_HEAD = 0.1, 0.01
LAYERS = {"encoder": ["encoder.0"], "head": ["head.0", "head.2"]}


def data():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(STEPS * BATCH, 4, generator=g, dtype=torch.float64)
    return x, (x[:, 0] * x[:, 1] > 0).long()


def nets():
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Linear(4, 16), nn.Tanh()).double()
    head = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2)).double()
    return encoder, head


def optimizers(encoder, head):
    return [
        torch.optim.SGD(encoder.parameters(), lr=LR_ENCODER, momentum=0.9),
        torch.optim.Adam(head.parameters(), lr=LR_HEAD),
    ]


def adversarial_step(encoder, head, x, y, opt_encoder, opt_head, backward, step):
    """A GAN-like step: the head (discriminator) steps on detached features, then the encoder
    (generator) steps to make the head predict flipped labels; that second backward pass adds
    to the head's gradients after the head's optimizer used them."""
    head_loss = nn.functional.cross_entropy(head(encoder(x).detach()), y)
    opt_head.zero_grad()
    backward(head_loss)
    step(opt_head)
    encoder_loss = nn.functional.cross_entropy(head(encoder(x)), 1 - y)
    opt_encoder.zero_grad()
    backward(encoder_loss)
    step(opt_encoder)
    return head_loss


class Adversarial(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.encoder, self.head = nets()

    def training_step(self, batch, batch_idx):
        opt_encoder, opt_head = self.optimizers()
        loss = adversarial_step(
            self.encoder, self.head, *batch, opt_encoder, opt_head, self.manual_backward,
            lambda optimizer: optimizer.step(),
        )  # fmt: skip
        return loss.detach()

    def configure_optimizers(self):
        return optimizers(self.encoder, self.head)


def grad_norm(module, name):
    """The gradient norm of the layer `module.<name>` (all its parameters)."""
    grads = [p.grad for p in module.get_submodule(name).parameters()]
    return float(torch.sqrt(sum(g.square().sum() for g in grads)))


@pytest.fixture(scope="module")
def reference():
    """Plain PyTorch: each layer's gradient norm read when its optimizer steps, update norms
    over the step, activation means over both forward passes."""
    encoder, head = nets()
    root = nn.ModuleDict({"encoder": encoder, "head": head})
    opt_encoder, opt_head = optimizers(encoder, head)
    grads, updates, means, dead = {}, {}, {}, {}
    sums = {}

    def record(name, module, args, out):
        total, count, unit_max = sums.get(name, (0.0, 0, None))
        unit = out.detach().amax(0)
        unit_max = unit if unit_max is None else torch.maximum(unit_max, unit)
        sums[name] = (total + float(out.detach().sum()), count + out.numel(), unit_max)

    for name in ["encoder.0", "encoder.1", "head.0", "head.1", "head.2"]:
        root.get_submodule(name).register_forward_hook(lambda m, a, o, n=name: record(n, m, a, o))

    def step(optimizer):
        net = "head" if optimizer is opt_head else "encoder"
        for layer in LAYERS[net]:
            grads[(t, layer)] = grad_norm(root, layer)
        optimizer.step()

    x, y = data()
    for t in range(STEPS):
        sums.clear()
        weights = {n: [p.detach().clone() for p in root.get_submodule(n).parameters()] for n in
                   LAYERS["encoder"] + LAYERS["head"]}  # fmt: skip
        rows = slice(t * BATCH, (t + 1) * BATCH)
        adversarial_step(
            encoder, head, x[rows], y[rows], opt_encoder, opt_head, torch.Tensor.backward, step
        )
        for name, old in weights.items():
            new = root.get_submodule(name).parameters()
            delta = [(a - b.detach()).square().sum() for a, b in zip(old, new, strict=True)]
            updates[(t, name)] = float(torch.sqrt(sum(delta)))
        for name, (total, count, unit_max) in sums.items():
            means[(t, name)] = total / count
            if name == "head.1":  # the ReLU
                dead[(t, name)] = float((unit_max <= 0).double().mean())
    return grads, updates, means, dead


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    x, y = data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=BATCH)
    callback = GradsightCallback(
        console=Console(file=io.StringIO()), updates_every=1, activations_every=1
    )
    trainer = pl.Trainer(
        max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, callbacks=[callback],
        default_root_dir=str(tmp_path_factory.mktemp("fit")),
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(num_workers|does not have many workers).*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # inside Lightning 2.6
        trainer.fit(Adversarial(), loader)
    return callback.history


def values(history, name):
    frame = history.frame()
    frame = frame[frame["name"] == name]
    return {
        (int(s), layer): v for s, layer, v in zip(frame.step, frame.layer, frame.value, strict=True)
    }


def test_each_layer_is_recorded_once_per_step(history):
    frame = history.frame()
    for name in ["grad/norm", "update/norm", "act/mean"]:
        rows = frame[frame["name"] == name]
        assert rows.groupby(["step", "layer"]).size().eq(1).all(), name
        assert sorted(set(rows.step)) == list(range(STEPS)), name
    assert sorted(set(frame[frame["name"] == "loss"].step)) == list(range(STEPS))


# (metric, index of the reference's dict)
CASES = {"gradients": ("grad/norm", 0), "updates": ("update/norm", 1),
         "activation means": ("act/mean", 2), "dead fractions": ("act/dead", 3)}  # fmt: skip


@pytest.mark.parametrize(("name", "index"), list(CASES.values()), ids=list(CASES))
def test_each_optimizer_is_read_at_its_own_step(history, reference, name, index):
    want, got = reference[index], values(history, name)
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_lr_per_optimizer(history):
    lr = values(history, "lr")
    assert lr == {
        **{(t, ""): LR_ENCODER for t in range(STEPS)},
        **{(t, "optimizer1"): LR_HEAD for t in range(STEPS)},
    }


def test_global_gradient_norm_covers_both_optimizers(history):
    norms = values(history, "grad/norm")
    for (t, _), value in values(history, "grad/norm_global").items():
        layers = [v for (s, _), v in norms.items() if s == t]
        assert value == pytest.approx(np.sqrt(np.sum(np.square(layers))), rel=1e-12)

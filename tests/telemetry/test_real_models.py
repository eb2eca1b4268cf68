"""gs.watch on models written the way public projects write them: Hugging Face GPT-2 and
BERT from configs, a CNN with F.relu in its forward, torch's own LSTM, tied weights."""

import math
import warnings
from contextlib import nullcontext

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gradsight as gs
from gradsight.telemetry.layers import activation_kind, preactivation_role

transformers = pytest.importorskip("transformers")
NO_DROPOUT = {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}


def gpt2(n_layer=2, impl="sdpa", seed=0, **config):
    torch.manual_seed(seed)
    cfg = transformers.GPT2Config(
        n_layer=n_layer,
        n_embd=32,
        n_head=4,
        vocab_size=40,
        n_positions=16,
        bos_token_id=0,
        eos_token_id=0,
        attn_implementation=impl,
        **config,
    )
    return transformers.GPT2LMHeadModel(cfg)


def lm_steps(model, optimizer, w, steps=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps):
        x = torch.randint(0, 40, (4, 12), generator=g)
        loss = model(x, labels=x).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if w is not None:
            w.log(loss=loss)
        losses.append(loss.detach())
    return losses


class FunctionalNet(nn.Module):
    """pytorch/examples mnist/main.py's Net, for 8x8 inputs: F.relu in the forward."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, 1)
        self.conv2 = nn.Conv2d(8, 16, 3, 1)
        self.fc1 = nn.Linear(64, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = self.conv2(x).relu()
        x = F.max_pool2d(x, 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x), inplace=True)
        return F.log_softmax(self.fc2(x), dim=1)


class ModuleNet(FunctionalNet):
    """The same network with nn.ReLU modules."""

    def __init__(self):
        super().__init__()
        self.relu1, self.relu2, self.relu3 = nn.ReLU(), nn.ReLU(), nn.ReLU()

    def forward(self, x):
        x = self.relu1(self.conv1(x))
        x = self.relu2(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = torch.flatten(x, 1)
        x = self.relu3(self.fc1(x))
        return F.log_softmax(self.fc2(x), dim=1)


def cnn_run(cls, bias=-3.0, steps=4):
    torch.manual_seed(0)
    model = cls()
    with torch.no_grad():
        model.conv2.bias.fill_(bias)  # most conv2 units never fire
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    g = torch.Generator().manual_seed(1)
    with gs.watch(model, optimizer, activations_every=1) as w:
        for _ in range(steps):
            x, y = torch.randn(32, 1, 8, 8, generator=g), torch.randint(0, 10, (32,), generator=g)
            loss = F.nll_loss(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            w.log(loss=loss)
    return w


@pytest.mark.parametrize(
    "module, role",
    [
        (nn.MultiheadAttention(8, 2).out_proj, ("linear", -1)),  # a subclass of nn.Linear
        (nn.ConvTranspose2d(2, 3, 3), ("conv", 1)),
        (nn.Embedding(5, 4), ("embedding", -1)),
        (nn.LayerNorm(4), ("norm", -1)),
        (nn.BatchNorm2d(4), ("norm", 1)),
        (nn.GroupNorm(2, 4), ("norm", 1)),
        (nn.ReLU(), None),
    ],
    ids=[
        "mha-out-proj",
        "conv-transpose",
        "embedding",
        "layernorm",
        "batchnorm",
        "groupnorm",
        "relu",
    ],
)
def test_pre_activation_layers_by_role(module, role):
    assert preactivation_role(module) == role


def test_hf_conv1d_is_a_layer_with_units_last():
    from transformers.pytorch_utils import Conv1D

    assert preactivation_role(Conv1D(6, 4)) == ("linear", -1)


@pytest.mark.parametrize(
    "module, kind",
    [
        (nn.ReLU6(), "relu"),
        (nn.LeakyReLU(), "relu"),
        (nn.GELU(), "smooth"),
        (nn.Tanh(), "tanh"),
        (nn.Linear(2, 2), None),
        (nn.Dropout(), None),
    ],
    ids=["relu6", "leaky", "gelu", "tanh", "linear", "dropout"],
)
def test_activation_modules_by_class(module, kind):
    assert activation_kind(module) == kind


def test_activation_modules_of_other_libraries_by_name():
    from transformers.activations import ACT2FN

    kinds = {name: activation_kind(ACT2FN[name]) for name in ACT2FN}
    assert kinds["gelu_new"] == kinds["gelu_pytorch_tanh"] == kinds["silu"] == "smooth"
    assert kinds["relu"] == kinds["relu6"] == "relu"
    assert kinds["sigmoid"] == "sigmoid"
    assert kinds["tanh"] == "tanh"
    assert all(kind is not None for kind in kinds.values())


def test_functional_and_module_relus_give_the_same_statistics():
    functional, modules = cnn_run(FunctionalNet), cnn_run(ModuleNet)
    pairs = {"conv1.relu": "relu1", "conv2.relu": "relu2", "fc1.relu": "relu3"}
    for name, module_name in pairs.items():
        for stat in ("act/dead", "act/zero_frac", "act/mean", "act/std", "act/grad_norm"):
            a = functional.history.series(stat, name).to_numpy()
            b = modules.history.series(stat, module_name).to_numpy()
            assert a == pytest.approx(b, rel=1e-5, abs=1e-7), (stat, name)
    assert functional.history.series("act/dead", "conv2.relu").iloc[0] > 0.9
    kinds = {f.kind for f in gs.diagnose(functional.history)}
    assert "dead_units" in kinds
    assert kinds == {f.kind for f in gs.diagnose(modules.history)}


def test_functional_dead_units_match_a_direct_count():
    w = cnn_run(FunctionalNet, steps=1)
    model = FunctionalNet()
    torch.manual_seed(0)
    model = FunctionalNet()
    with torch.no_grad():
        model.conv2.bias.fill_(-3.0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(32, 1, 8, 8, generator=g)
    out = F.relu(model.conv2(F.relu(model.conv1(x))))
    dead = (out.amax(dim=(0, 2, 3)) <= 0).float().mean().item()
    assert w.history.series("act/dead", "conv2.relu").iloc[0] == pytest.approx(dead)


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_gpt2_every_block_is_measured(impl):
    model = gpt2(impl=impl)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with gs.watch(model, optimizer, activations_every=1) as w:
        lm_steps(model, optimizer, w)
    measured = set(w.history.layers("act/mean"))
    for block in range(2):
        prefix = f"transformer.h.{block}"
        for part in ("ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "mlp.c_fc", "mlp.act"):
            assert f"{prefix}.{part}" in measured
        assert f"{prefix}.attn" in w.history.layers("attn/entropy")
        assert prefix in w.history.layers("resid/norm")
    assert w.history.last("out/classes") == 40
    assert "transformer.h.1.mlp.act" in w.coverage().measured


def test_attention_entropy_equals_the_returned_attention_maps():
    model = gpt2(impl="eager", n_layer=1, initializer_range=0.5, **NO_DROPOUT)  # not uniform
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    x = torch.randint(0, 40, (4, 12), generator=torch.Generator().manual_seed(0))
    with gs.watch(model, optimizer, activations_every=1) as w:
        loss = model(x, labels=x).loss
        loss.backward()
        optimizer.step()
    model.eval()  # same weights, no dropout: the maps the forward computed
    with torch.no_grad():
        probs = model(x, output_attentions=True).attentions[0].double()  # (B, H, Q, K)
    entropy = -torch.special.xlogy(probs, probs).sum(-1)
    keys = torch.arange(1, 13, dtype=torch.float64)  # causal: query q sees q + 1 keys
    ratio = (entropy[..., 1:] / keys[1:].log()).mean()
    layer = "transformer.h.0.attn"
    assert w.history.last("attn/entropy", layer) == pytest.approx(entropy.mean().item(), rel=1e-4)
    assert w.history.last("attn/entropy_ratio", layer) == pytest.approx(ratio.item(), rel=1e-4)


def test_sdpa_and_eager_attention_give_the_same_entropy():
    values = []
    for impl in ("sdpa", "eager"):
        model = gpt2(impl=impl, initializer_range=0.3)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
        with gs.watch(model, optimizer, activations_every=1) as w:
            lm_steps(model, optimizer, w, steps=1)
        values.append(w.history.table("attn/entropy").to_numpy())
    assert values[0] == pytest.approx(values[1], rel=1e-4)


def test_watching_gpt2_does_not_change_training_bit_for_bit():
    runs = []
    for watched in (False, True):
        model = gpt2(resid_pdrop=0.1, attn_pdrop=0.1, embd_pdrop=0.1)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        torch.manual_seed(5)
        if watched:
            with gs.watch(model, optimizer, activations_every=1) as w:
                losses = lm_steps(model, optimizer, w, steps=3)
        else:
            losses = lm_steps(model, optimizer, None, steps=3)
        runs.append((torch.stack(losses), [p.detach().clone() for p in model.parameters()]))
    assert torch.equal(runs[0][0], runs[1][0])
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1], strict=True))


def test_first_nonfinite_module_is_found_among_all_modules():
    model = gpt2()
    with torch.no_grad():
        model.transformer.h[0].ln_1.weight[3] = math.nan
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with warnings.catch_warnings(), gs.watch(model, optimizer) as w:
        warnings.simplefilter("ignore", RuntimeWarning)
        lm_steps(model, optimizer, w, steps=1)
    assert w.nonfinite is not None
    assert w.nonfinite.module == "transformer.h.0.ln_1"


class WordLM(nn.Module):
    """pytorch/examples word_language_model's RNNModel, tied weights."""

    def __init__(self, rnn_type="LSTM", ntoken=30, nhid=16):
        super().__init__()
        self.encoder = nn.Embedding(ntoken, nhid)
        self.rnn = getattr(nn, rnn_type)(nhid, nhid, 2)
        self.decoder = nn.Linear(nhid, ntoken)
        self.decoder.weight = self.encoder.weight

    def forward(self, x, hidden=None):
        output, hidden = self.rnn(self.encoder(x), hidden)
        return self.decoder(output), hidden


@pytest.mark.parametrize("rnn_type", ["LSTM", "GRU", "RNN"])
def test_torch_rnn_time_step_gradients_equal_autograd(rnn_type):
    torch.manual_seed(0)
    model = WordLM(rnn_type)
    x = torch.randint(0, 30, (10, 3), generator=torch.Generator().manual_seed(1))  # (T, B)
    with gs.watch(model, activations_every=1) as w:
        logits, _ = model(x)
        loss = F.cross_entropy(logits[-1], x[-1])  # the last step only
        model.zero_grad()
        loss.backward()
        w.step()
    emb = model.encoder(x).detach().requires_grad_(True)
    out, _ = model.rnn(emb)
    out.retain_grad()
    F.cross_entropy(model.decoder(out)[-1], x[-1]).backward()
    expected_in = emb.grad.norm(dim=(1, 2))
    expected_out = out.grad.norm(dim=(1, 2))
    got_in = [w.history.last("time/grad_input", f"rnn[{t}]") for t in range(10)]
    got_out = [w.history.last("time/grad_output", f"rnn[{t}]") for t in range(10)]
    assert got_in == pytest.approx(expected_in.tolist(), rel=1e-4, abs=1e-12)
    assert got_out == pytest.approx(expected_out.tolist(), rel=1e-4, abs=1e-12)


def test_tied_weights_are_counted_once_and_named():
    torch.manual_seed(0)
    model = WordLM()
    with gs.watch(model, activations_every=1) as w:
        logits, _ = model(torch.randint(0, 30, (5, 2)))
        logits.sum().backward()
        w.step()
    assert w.layout.tied == {"encoder.weight": ["decoder.weight"]}
    assert w.history.meta["layers"]["decoder"]["params"] == ["decoder.bias"]
    assert w.history.meta["layers"]["encoder"]["tied"] == ["decoder"]
    assert "tied: encoder.weight = decoder.weight" in w.coverage().summary()


class Awkward(nn.Module):
    """A block called twice, a frozen layer, parameter groups, buffers in one layer only."""

    def __init__(self, dtype):
        super().__init__()
        self.frozen = nn.Linear(6, 6).to(dtype)
        self.frozen.requires_grad_(False)
        self.block = nn.Sequential(nn.Linear(6, 6), nn.GELU()).to(dtype)
        self.norm = nn.BatchNorm1d(6).to(dtype)
        self.head = nn.Linear(6, 3).to(dtype)

    def forward(self, x):
        return self.head(self.norm(self.block(self.block(self.frozen(x)))))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_nothing_crashes_on_awkward_models(dtype):
    torch.manual_seed(0)
    model = Awkward(dtype)
    optimizer = torch.optim.SGD(
        [{"params": model.block.parameters()}, {"params": model.head.parameters(), "lr": 0.01}],
        lr=0.1,
    )
    with gs.watch(model, optimizer, activations_every=1, updates_every=1) as w:
        for _ in range(3):
            x = torch.randn(8, 6).to(dtype)
            loss = model(x).float().pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            w.log(loss=loss)
    coverage = w.coverage()
    assert coverage.frozen == ["frozen.weight", "frozen.bias"]
    assert coverage.unmeasured.get("frozen") is None  # its output is still measured
    assert set(w.history.layers("grad/norm")) == {"block.0", "norm", "head"}
    # The block's two calls per step combine: twice the rows of one call.
    assert w.history.series("act/mean", "block.1").notna().all()


def test_coverage_says_what_is_not_measured():
    model = gpt2()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with gs.watch(model, optimizer) as w:
        lm_steps(model, optimizer, w, steps=1)
    coverage = w.coverage()
    assert coverage.unmeasured["transformer.drop"] == "no parameters and not an activation"
    assert coverage.measured["transformer.h.0.attn"].startswith("attention entropy")
    assert w.history.meta["coverage"]["unmeasured"] == coverage.unmeasured


def test_run_dir_keeps_the_optimizer_and_coverage_for_the_report(tmp_path):
    model = gpt2(n_layer=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with gs.watch(model, optimizer, run_dir=tmp_path / "run") as w:
        lm_steps(model, optimizer, w, steps=1)
    history = gs.History.load(tmp_path / "run")
    assert history.meta["optimizer"]["name"] == "AdamW"
    assert history.meta["optimizer"]["family"] == "adaptive"
    assert history.meta["coverage"]["measured"]["transformer.h.0.mlp.act"] == "activation (smooth)"
    page = gs.report(history, [], tmp_path / "report.html").read_text()
    assert "Coverage: " in page and "transformer.drop" in page


@pytest.mark.parametrize("batch_first", [False, True])
def test_multihead_attention_entropy_equals_its_own_weights(batch_first):
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=batch_first)
    with torch.no_grad():
        layer.self_attn.in_proj_weight.mul_(4.0)  # peaked attention
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.0)
    x = torch.randn(3, 5, 16) if batch_first else torch.randn(5, 3, 16)  # N = 3, S = 5
    mask = torch.ones(5, 5, dtype=torch.bool).triu(1)  # True: may not attend
    padding = torch.zeros(3, 5, dtype=torch.bool)
    padding[0, -1] = True  # the first sequence is one token shorter
    with gs.watch(layer, optimizer, activations_every=1) as w:
        layer(x, src_mask=mask, src_key_padding_mask=padding).sum().backward()
        optimizer.step()
    with torch.no_grad():
        _, probs = layer.self_attn(
            x, x, x, attn_mask=mask, key_padding_mask=padding, average_attn_weights=False
        )  # (N, H, L, S)
    entropy = -torch.special.xlogy(probs, probs).sum(-1)
    entropy = entropy[~probs.isnan().any(-1)]
    assert w.history.last("attn/entropy", "self_attn") == pytest.approx(
        entropy.mean().item(), rel=1e-4
    )
    assert w.history.last("out/classes") == 16


@pytest.mark.parametrize("rnn_type", ["LSTM", "RNN"])
def test_memory_probe_equals_autograd_and_leaves_training_alone(rnn_type):
    torch.manual_seed(0)
    model = WordLM(rnn_type)
    x = torch.randint(0, 30, (10, 3), generator=torch.Generator().manual_seed(1))
    reference = WordLM(rnn_type)
    reference.load_state_dict(model.state_dict())
    with gs.watch(model, activations_every=1) as w:
        logits, _ = model(x)
        F.cross_entropy(logits.reshape(-1, 30), x.reshape(-1)).backward()
        w.step()
    logits, _ = reference(x)
    F.cross_entropy(logits.reshape(-1, 30), x.reshape(-1)).backward()
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(a.grad, b.grad)  # the probe adds nothing to the weights' gradients
    emb = reference.encoder(x).detach().requires_grad_(True)
    out, _ = reference.rnn(emb)
    (grad,) = torch.autograd.grad(out[-1].sum(), emb)
    got = [w.history.last("time/memory", f"rnn[{t}]") for t in range(10)]
    assert got == pytest.approx(grad.norm(dim=(1, 2)).tolist(), rel=1e-4, abs=1e-12)


def test_watching_an_lstm_with_dropout_does_not_change_training_bit_for_bit():
    runs = []
    for watched in (False, True):
        torch.manual_seed(0)
        model = WordLM()
        model.rnn.dropout = 0.5  # between its two layers: draws random numbers
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
        torch.manual_seed(3)
        losses = []
        with gs.watch(model, optimizer, activations_every=1) if watched else nullcontext():
            for step in range(3):
                x = torch.randint(0, 30, (8, 4), generator=torch.Generator().manual_seed(step))
                logits, _ = model(x)
                loss = F.cross_entropy(logits.reshape(-1, 30), x.reshape(-1))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.detach())
        runs.append(torch.stack(losses))
    assert torch.equal(runs[0], runs[1])


def test_bert_every_layer_is_measured():
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=30, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=16, num_labels=3,
    )  # fmt: skip
    model = transformers.BertForSequenceClassification(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, 30, (4, 10))
    mask = torch.ones_like(x)
    mask[0, 7:] = 0  # padding: masked keys
    with gs.watch(model, optimizer, activations_every=1) as w:
        loss = model(input_ids=x, attention_mask=mask, labels=torch.tensor([0, 1, 2, 0])).loss
        loss.backward()
        optimizer.step()
    measured = set(w.history.layers("act/mean"))
    for layer in range(2):
        prefix = f"bert.encoder.layer.{layer}"
        for part in (
            "attention.self.query",
            "intermediate.dense",
            "intermediate.intermediate_act_fn",
            "output.LayerNorm",
        ):
            assert f"{prefix}.{part}" in measured
        assert f"{prefix}.attention.self" in w.history.layers("attn/entropy_ratio")
        assert prefix in w.history.layers("resid/norm")
    assert "bert.pooler.activation" in w.history.layers("act/saturated")  # its tanh
    assert w.history.last("out/classes") == 3

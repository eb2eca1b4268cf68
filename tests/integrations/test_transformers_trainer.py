"""The HF Trainer callback against the Trainer's own logs and a plain loop replaying its steps.

A tiny GPT-2 from a config, trained by a real `transformers.Trainer` on CPU: gradient norms
are read before clipping (the Trainer logs the same pre-clip `grad_norm`), after gradient
accumulation, and every step's loss is recorded; a plain loop fed the very batches the
Trainer's model saw, from the same initial weights, gives the same per-layer norms.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from gradsight.integrations.transformers import GradsightCallback  # noqa: E402
from gradsight.telemetry.history import History  # noqa: E402
from gradsight.telemetry.layers import parameter_layout  # noqa: E402

VOCAB, LENGTH, STEPS = 32, 16, 6
TAG = "gradsight/grad.norm_global"


def tiny_gpt2(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    # No dropout, so that a plain loop replays the very same computation.
    config = transformers.GPT2Config(
        vocab_size=VOCAB, n_positions=LENGTH, n_embd=32, n_layer=2, n_head=2,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    return transformers.GPT2LMHeadModel(config)


class TokenWindows(torch.utils.data.Dataset):
    """Windows of a random token stream, labels = inputs (the model shifts them)."""

    def __init__(self, count: int, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.tokens = torch.randint(0, VOCAB, (count, LENGTH), generator=generator)

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.tokens[index], "labels": self.tokens[index]}


def train(tmp_path, *, accumulation, max_grad_norm, bf16=False, report_to="none", logging_steps=1):
    model = tiny_gpt2()
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    seen: list[dict] = []  # what the model received in each training forward pass

    def record(module, args, kwargs):
        if torch.is_grad_enabled():
            seen.append({k: v for k, v in kwargs.items()})

    model.register_forward_pre_hook(record, with_kwargs=True)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=4,
        gradient_accumulation_steps=accumulation,
        max_steps=STEPS,
        learning_rate=5e-3,
        max_grad_norm=max_grad_norm,
        logging_steps=logging_steps,
        report_to=report_to,
        train_sampling_strategy="sequential",
        save_strategy="no",
        use_cpu=True,
        bf16=bf16,
        seed=0,
    )
    callback = GradsightCallback(activations_every=3)
    trainer = transformers.Trainer(
        model=model, args=args, train_dataset=TokenWindows(64), callbacks=[callback]
    )
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "grad_norm" in entry]
    return initial, seen, callback, logs


def replay_norms(initial, seen, accumulation, max_grad_norm, lr):
    """Per-layer pre-clip gradient norms and losses of a plain loop over the same batches."""
    model = tiny_gpt2()
    model.load_state_dict(initial)
    model.train()
    layout = parameter_layout(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: 1 - t / STEPS)
    norms, losses = [], []
    for step in range(STEPS):
        micro = seen[step * accumulation : (step + 1) * accumulation]
        total = 0.0
        for kwargs in micro:
            loss = model(**kwargs).loss
            share = kwargs.get("num_items_in_batch") is not None
            (loss if share else loss / len(micro)).backward()
            total += float(loss.detach()) / (1 if share else len(micro))
        losses.append(total)
        per_layer = {}
        for layer in layout.layers:
            squares = [
                float(p.grad.double().norm() ** 2)
                for p, owner in zip(layout.params, layout.layer_of, strict=True)
                if layout.layers[owner] == layer and p.grad is not None
            ]
            per_layer[layer] = math.sqrt(sum(squares))
        norms.append(per_layer)
        if max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
    return norms, losses


CASES = [
    pytest.param(1, 0.0, id="no-accumulation-no-clipping"),
    pytest.param(2, 0.05, id="accumulation-2-clipped-hard"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("accumulation", "max_grad_norm"), CASES)
def test_trainer_matches_its_logs_and_a_plain_loop(tmp_path, accumulation, max_grad_norm):
    initial, seen, callback, logs = train(
        tmp_path, accumulation=accumulation, max_grad_norm=max_grad_norm
    )
    history = History.load(callback.run_path)
    assert history.meta["gradients_read"] == "backward"
    recorded = history.table("grad/norm_global").iloc[:, 0].to_numpy()
    trainer_norms = np.array([entry["grad_norm"] for entry in logs])
    assert len(recorded) == STEPS
    # The Trainer's grad_norm is the pre-clip norm: the watch sees it although clipping
    # (max_grad_norm 0.05 against norms of about 1) scaled every gradient down.
    np.testing.assert_allclose(recorded, trainer_norms, rtol=1e-5)
    if max_grad_norm:
        assert recorded.min() > 5 * max_grad_norm

    expected, plain_losses = replay_norms(initial, seen, accumulation, max_grad_norm, 5e-3)
    table = history.table("grad/norm")
    for step in range(STEPS):
        for layer, value in expected[step].items():
            assert table.loc[step, layer] == pytest.approx(value, rel=2e-4), (step, layer)
    losses = history.table("loss").iloc[:, 0].to_numpy()
    np.testing.assert_allclose(losses, plain_losses, rtol=1e-4)
    # The Trainer logs each step's loss rounded to 4 digits (logging_steps=1 here).
    np.testing.assert_allclose(losses, [entry["loss"] for entry in logs], atol=1e-4)
    assert (callback.run_path / "findings.json").exists()
    assert json.loads((callback.run_path / "run.json").read_text())["status"] == "finished"


@pytest.mark.slow
def test_trainer_bf16_on_cpu(tmp_path):
    try:
        _, _, callback, logs = train(tmp_path, accumulation=1, max_grad_norm=1.0, bf16=True)
    except (ValueError, RuntimeError) as error:  # a torch or CPU without bf16 autocast
        pytest.skip(f"bf16 on this CPU: {error}")
    recorded = callback.history.table("grad/norm_global").iloc[:, 0].to_numpy()
    np.testing.assert_allclose(recorded, [entry["grad_norm"] for entry in logs], rtol=1e-5)
    assert callback.history.table("act/mean").notna().to_numpy().any()


@pytest.mark.slow
def test_statistics_reach_the_report_to_trackers_at_the_logging_steps(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    _, _, callback, _ = train(
        tmp_path,
        accumulation=1,
        max_grad_norm=1.0,
        report_to=["tensorboard", "mlflow"],
        logging_steps=2,
    )
    recorded = callback.history.table("grad/norm_global").iloc[:, 0]
    expected = {step + 1: recorded[step] for step in range(STEPS) if (step + 1) % 2 == 0}

    client = mlflow.MlflowClient()
    (run,) = client.search_runs(client.search_experiments()[0].experiment_id)
    ours = {m.step: m.value for m in client.get_metric_history(run.info.run_id, TAG)}
    theirs = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "grad_norm")}
    assert ours == pytest.approx(expected, rel=1e-6)  # the Trainer's logging steps, its axis
    assert ours == pytest.approx({step: theirs[step] for step in ours}, rel=1e-5)

    events = accumulator.EventAccumulator(str(tmp_path / "out" / "runs" / "gradsight"))
    events.Reload()
    scalars = {event.step: event.value for event in events.Scalars(TAG)}
    assert scalars == pytest.approx(expected, rel=1e-6)

"""GradsightCallback under a 2-process DDP Trainer (gloo, CPU): the global batch's statistics."""

import csv
import json
import runpy
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("lightning.pytorch")

# One script for both runs: `python fit.py 2 OUT` is the DDP job (Lightning's "ddp" strategy
# starts the second process by running the script again); `fit(1, ...)` is the reference.
SCRIPT = textwrap.dedent(
    """
    import io, json, os, sys, warnings
    import lightning.pytorch as pl
    import torch
    from rich.console import Console
    from torch import nn
    from gradsight.integrations.lightning import GradsightCallback

    STEPS, BATCH = 3, 16  # BATCH: the global batch, split over the processes

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.net = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(),
                                     nn.Linear(16, 3)).double()

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return nn.functional.cross_entropy(self(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)

        def train_dataloader(self):
            g = torch.Generator().manual_seed(0)
            x = torch.randn(STEPS * BATCH, 6, generator=g, dtype=torch.float64)
            data = torch.utils.data.TensorDataset(x, torch.randint(0, 3, (len(x),), generator=g))
            # Rank r takes the rows r, r + 2, ... in order (Lightning's own sampler shuffles):
            # at each step the two shards make up the single process's batch.
            world, rank = self.trainer.world_size, self.trainer.global_rank
            sampler = torch.utils.data.DistributedSampler(data, world, rank, shuffle=False)
            return torch.utils.data.DataLoader(data, BATCH // world, sampler=sampler)

    def fit(devices, out):
        callback = GradsightCallback(os.path.join(out, "run"), console=Console(file=io.StringIO()),
                                     updates_every=1, activations_every=1)
        trainer = pl.Trainer(
            max_steps=STEPS, accelerator="cpu", devices=devices,
            strategy="ddp" if devices > 1 else "auto", callbacks=[callback],
            logger=pl.loggers.CSVLogger(out, name="csv", version=0), log_every_n_steps=1,
            enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
            use_distributed_sampler=False, default_root_dir=out)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.fit(Module())
        rank = trainer.global_rank
        callback.history.frame().to_json(os.path.join(out, f"rank{rank}.json"))
        facts = {"run": callback.run is not None, "printed": callback.console.file.getvalue(),
                 "world": trainer.world_size}
        with open(os.path.join(out, f"facts{rank}.json"), "w") as file:
            json.dump(facts, file)

    if __name__ == "__main__":
        fit(int(sys.argv[1]), sys.argv[2])
    """
)


@pytest.mark.slow
def test_two_processes_record_the_statistics_of_the_global_batch(tmp_path, rows):
    torch = pytest.importorskip("torch")
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available in this build")
    script = tmp_path / "fit.py"
    script.write_text(SCRIPT)
    (tmp_path / "single").mkdir()
    (tmp_path / "ddp").mkdir()
    runpy.run_path(str(script), run_name="reference")["fit"](1, str(tmp_path / "single"))
    done = subprocess.run(
        [sys.executable, str(script), "2", str(tmp_path / "ddp")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    single = rows(tmp_path / "single" / "rank0.json")
    rank0, rank1 = rows(tmp_path / "ddp" / "rank0.json"), rows(tmp_path / "ddp" / "rank1.json")
    names = {name for _, name, _ in single}
    assert names >= {
        "grad/norm",
        "grad/norm_global",
        "update/norm",
        "act/mean",
        "act/std",
        "act/saturated",
        "act/dead",
        "act/zero_frac",
        "act/grad_norm",
        "loss",
        "lr",
    }
    assert set(rank0) == set(single)
    for key, value in single.items():
        assert rank0[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    assert rank1 == pytest.approx(rank0, rel=1e-12)  # every process holds the same History

    facts = [json.loads((tmp_path / "ddp" / f"facts{r}.json").read_text()) for r in (0, 1)]
    assert [f["world"] for f in facts] == [2, 2]
    assert [f["run"] for f in facts] == [True, False]  # global rank 0 alone writes
    assert "gradsight" in facts[0]["printed"] and facts[1]["printed"] == ""
    run = json.loads((tmp_path / "ddp" / "run" / "run.json").read_text())
    assert run["status"] == "finished"
    with open(tmp_path / "ddp" / "csv" / "version_0" / "metrics.csv") as file:
        logged = [r for r in csv.DictReader(file) if r.get("gradsight.grad.norm/net.0")]
    assert [int(r["step"]) for r in logged] == [0, 1, 2]
    for r in logged:
        key = (int(r["step"]), "grad/norm", "net.0")
        assert float(r["gradsight.grad.norm/net.0"]) == pytest.approx(single[key], rel=1e-6)

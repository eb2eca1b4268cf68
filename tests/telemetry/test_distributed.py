"""gs.watch under DDP: statistics of the global batch, written by rank 0 alone."""

import socket
import subprocess
import sys
import textwrap

import pytest

import gradsight as gs

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import torch, torch.distributed as dist, torch.multiprocessing as mp
    from torch import nn
    import gradsight as gs

    def data():
        g = torch.Generator().manual_seed(0)
        x = torch.randn(32, 6, generator=g, dtype=torch.float64)
        return x, torch.randint(0, 3, (32,), generator=g)

    def model():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(),
                             nn.Linear(16, 3)).double()

    def train(net, x, y, run_dir):
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
        with gs.watch(net, optimizer, updates_every=1, activations_every=1,
                      run_dir=run_dir) as watch:
            for _ in range(3):
                loss = nn.functional.cross_entropy(net(x), y)
                optimizer.zero_grad(); loss.backward(); optimizer.step()
                watch.log(loss=loss)
        return watch.history

    def worker(rank, world, port, out):
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
        x, y = data()
        net = nn.parallel.DistributedDataParallel(model())
        run_dir = os.path.join(out, f"run{rank}")
        history = train(net, x.chunk(world)[rank], y.chunk(world)[rank], run_dir)
        history.frame().to_json(os.path.join(out, f"rank{rank}.json"))
        dist.destroy_process_group()

    if __name__ == "__main__":
        world, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
        if world == 1:
            x, y = data()
            train(model(), x, y, None).frame().to_json(os.path.join(out, "single.json"))
        else:
            mp.spawn(worker, args=(world, port, out), nprocs=world)
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(tmp_path, world):
    script = tmp_path / "ddp.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(world), str(free_port()), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
def test_two_processes_report_the_statistics_of_the_global_batch(tmp_path, rows):
    torch = pytest.importorskip("torch")
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available in this build")
    run(tmp_path, 1)
    run(tmp_path, 2)
    single, rank0 = rows(tmp_path / "single.json"), rows(tmp_path / "rank0.json")
    compared = [k for k in single if not k[1].startswith("act/drift")]
    assert {k[1] for k in compared} >= {
        "grad/norm",
        "grad/norm_global",
        "update/ratio",
        "act/mean",
        "act/std",
        "act/saturated",
        "act/dead",
        "act/zero_frac",
        "act/grad_norm",
        "loss",
    }
    for key in compared:
        assert rank0[key] == pytest.approx(single[key], rel=1e-6, abs=1e-9), key
    assert (tmp_path / "run0" / "run.json").is_file()
    assert not (tmp_path / "run1").exists()  # rank 0 alone writes
    assert gs.History.load(tmp_path / "run0").series("loss").index.tolist() == [0, 1, 2]

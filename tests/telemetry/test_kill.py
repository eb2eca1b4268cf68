import os
import signal
import subprocess
import sys
import textwrap

from gradsight.telemetry import History, read_run

CHILD = textwrap.dedent(
    """
    import sys, torch
    import gradsight as gs

    model = gs.models.mlp(8, 2, depth=3, width=16, seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(32, 8), torch.randint(0, 2, (32,))
    with gs.watch(model, optimizer, run_dir=sys.argv[1], flush_every=10) as watch:
        step = 0
        while True:  # until killed
            loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad(); loss.backward(); optimizer.step()
            watch.log(loss=loss)
            step += 1
            if step % 10 == 0:
                print(step, flush=True)
    """
)


def test_a_run_killed_with_sigkill_keeps_every_flushed_part(tmp_path):
    run_dir = tmp_path / "run"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(run_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        for line in child.stdout:
            if int(line) >= 50:
                break
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert read_run(run_dir)["status"] == "running"  # nobody could mark it
    steps = History.load(run_dir).series("grad/norm_global").index.tolist()
    assert len(steps) >= 40 and len(steps) % 10 == 0
    assert steps == list(range(len(steps)))

"""Checks and timings that need CUDA; prints one JSON line per case (skips without a GPU).

- watch on CUDA: bit-identical training with and without it, one host transfer per logged
  step, and its overhead against bare training and against the floor of each setting
  (`watch_overhead.install_floor`) on the reference model (8x256 sigmoid, batch 128, SGD), a
  Hugging Face GPT-2 and pytorch/examples' MNIST network (`watch_real_models`);
- Lamb on CUDA: equal to the CPU float64 run within float tolerance, and the step time of
  both its paths (fused kernel, public foreach ops) against torch_optimizer.Lamb (when
  installed) and torch.optim.AdamW (fused and foreach) on 288 tensors / 19M parameters;
- curvature on CUDA: lambda_max equal to the CPU float64 value;
- fit(device="cuda") on digits.

Run: `python benchmarks/gpu_check.py` on a machine with a GPU (from any folder: the sibling
benchmark scripts are imported from this one's folder).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

import gradsight as gs

sys.path.insert(0, str(Path(__file__).parent))  # the sibling benchmark scripts


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def timed(step, repeats: int = 30, blocks: int = 7) -> float:
    for _ in range(5):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(blocks):
        start = time.perf_counter()
        for _ in range(repeats):
            step()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - start) / repeats)
    return statistics.median(times)


def check_watch() -> None:
    x = torch.randn(128, 784, device="cuda")
    y = torch.randint(0, 10, (128,), device="cuda")

    def make(watched: dict | None):
        model = gs.models.mlp(784, 10, depth=9, width=256, activation="sigmoid", seed=0).cuda()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        watch = gs.watch(model, optimizer, **watched) if watched is not None else None

        def step() -> torch.Tensor:
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if watch is not None:
                watch.log(loss=loss)
            return loss

        return model, optimizer, step, watch

    bare_model, _, bare, _ = make(None)
    watched_model, _, watched, watch = make({"activations_every": 1, "updates_every": 1})
    same = all(torch.equal(bare().detach(), watched().detach()) for _ in range(20))
    same &= all(
        torch.equal(a, b)
        for a, b in zip(bare_model.parameters(), watched_model.parameters(), strict=True)
    )
    watch.close()
    emit(case="watch_bit_identical_cuda", identical=bool(same))
    from watch_overhead import SETTINGS, install_floor, ratios

    for name in ("default", "everything"):
        _, _, bare, _ = make(None)
        _, _, watched, watch = make(SETTINGS[name])
        floor_model, floor_optimizer, floor, _ = make(None)
        install_floor(floor_model, floor_optimizer, name)
        times = {"bare": timed(bare), "watched": timed(watched), "floor": timed(floor)}
        watch.close()
        emit(case="watch_overhead_cuda", model="reference", setting=name, **ratios(times))


def check_watch_real_models() -> None:
    from watch_overhead import ratios, three_loops
    from watch_real_models import MODELS, step_fn

    for name, build in MODELS.items():

        def loop(build=build):
            model, loss_fn, optimizer = build("cuda")
            return model, optimizer, lambda log: step_fn(model, loss_fn, optimizer, log)

        loops, watch = three_loops(loop, "default")
        times = {kind: timed(step, repeats=20) for kind, step in loops.items()}
        watch.close()
        emit(case="watch_overhead_cuda", model=name, setting="default", **ratios(times))


def check_lamb() -> None:
    torch.manual_seed(0)
    shapes = [(64, 32), (32,), (10, 64)]
    cpu = [torch.randn(s, dtype=torch.float64) for s in shapes]
    grads = [[torch.randn(s, dtype=torch.float64) for s in shapes] for _ in range(5)]
    results = {}
    for device, dtype in (("cpu", torch.float64), ("cuda", torch.float32)):
        params = [p.clone().to(device, dtype).requires_grad_() for p in cpu]
        optimizer = gs.optim.Lamb(params, lr=1e-2, weight_decay=0.01)
        for step_grads in grads:
            for p, g in zip(params, step_grads, strict=True):
                p.grad = g.to(device, dtype)
            optimizer.step()
        results[device] = torch.cat([p.detach().double().cpu().flatten() for p in params])
    error = ((results["cuda"] - results["cpu"]).abs().max() / results["cpu"].abs().max()).item()
    emit(case="lamb_cuda_vs_cpu_float64", max_rel_error=error)

    blocks = [[(256, 256)] * 4 + [(1024, 256), (256, 1024)] + [(256,)] * 6 for _ in range(24)]
    shapes = [s for block in blocks for s in block]
    params = [torch.randn(s, device="cuda", requires_grad=True) for s in shapes]
    for p in params:
        p.grad = torch.randn_like(p)
    count = sum(p.numel() for p in params)
    candidates = {
        "gradsight.Lamb(fused)": gs.optim.Lamb(params, lr=1e-3, weight_decay=0.01),
        "gradsight.Lamb(foreach)": gs.optim.Lamb(
            params, lr=1e-3, weight_decay=0.01, implementation="foreach"
        ),
        "AdamW(fused)": torch.optim.AdamW(params, lr=1e-3, fused=True),
        "AdamW(foreach)": torch.optim.AdamW(params, lr=1e-3, foreach=True),
    }
    try:
        import torch_optimizer

        candidates["torch_optimizer.Lamb"] = torch_optimizer.Lamb(
            params, lr=1e-3, weight_decay=0.01
        )
    except ImportError:
        pass
    for name, optimizer in candidates.items():
        emit(
            case="optimizer_step_cuda",
            optimizer=name,
            tensors=len(params),
            params=count,
            ms=round(timed(optimizer.step) * 1e3, 3),
        )


def check_curvature() -> None:
    torch.manual_seed(0)
    model = gs.models.mlp(20, 3, depth=3, width=16, activation="tanh", seed=0).double()
    x, y = torch.randn(64, 20, dtype=torch.float64), torch.randint(0, 3, (64,))
    loss = nn.functional.cross_entropy
    cpu = gs.curvature.eigenvalues(model, loss, (x, y), k=1, which="LA", tol=1e-8).values[0]
    model.cuda()
    cuda = gs.curvature.eigenvalues(
        model, loss, (x.cuda(), y.cuda()), k=1, which="LA", tol=1e-8
    ).values[0]
    emit(
        case="lanczos_cuda_vs_cpu",
        cpu=float(cpu),
        cuda=float(cuda),
        rel_error=abs(float(cuda) - float(cpu)) / abs(float(cpu)),
    )


def check_fit() -> None:
    task = gs.data.load("digits", seed=0)
    model = gs.models.mlp(64, 10, depth=4, width=64, init="he_normal", seed=0)
    result = gs.fit(
        model, task, optimizer="adam", lr=1e-3, steps=300, batch_size=64, device="cuda", watch=True
    )
    emit(
        case="fit_cuda",
        test_accuracy=round(result.metrics["test_accuracy"], 4),
        grad_rows=len(result.history.series("grad/norm_global")),
    )


def main() -> None:
    if not torch.cuda.is_available():
        emit(case="skipped", reason="no CUDA device")
        return
    emit(case="device", name=torch.cuda.get_device_name(), torch=torch.__version__)
    for check in (check_watch, check_watch_real_models, check_lamb, check_curvature, check_fit):
        try:
            check()
        except Exception as error:  # report every check, even after one fails
            emit(case=check.__name__, error=f"{type(error).__name__}: {error}")


if __name__ == "__main__":
    main()

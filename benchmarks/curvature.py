"""Top Hessian eigenvalue: gradsight (Lanczos) vs PyHessian (power iteration), JSON lines.

Reference problem: an MLP with 8 hidden tanh layers of 256, 784 inputs, 10
classes, cross-entropy on one batch of 512 (Gaussian inputs and random labels from a seeded
generator), float32 on CPU, eval mode. "Converged" is a long Lanczos run (tol 1e-7).

Cases:
- `hvp_cost`: one gradient, and one Hessian-vector product of each method, in gradients.
- `gradsight_default`: `gs.curvature.eigenvalues(..., which="LA")` at its default tol=1e-3.
- `pyhessian_default`: `pyhessian.hessian(...).eigenvalues()` at its default tol=1e-3.
- `pyhessian_to_0.1pct`: products and time until PyHessian's iterate is and stays within
  0.1% of the converged value (read off one long instrumented run).
- `gradsight_lambda_min`: `which="SA"`, which power iteration cannot do.
Times are medians over `--repeats` runs (PyHessian's long run: once).

Run: `python benchmarks/curvature.py` (needs the `bench` extra: pip install pyhessian).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

import gradsight as gs
from gradsight.curvature import HessianOperator, eigenvalues


def problem(seed: int = 0) -> tuple[torch.nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    model = gs.models.mlp(784, 10, depth=9, width=256, activation="tanh", seed=seed).eval()
    x = torch.randn(512, 784, generator=gen)
    y = torch.randint(0, 10, (512,), generator=gen)
    return model, (x, y)


def emit(case: str, **values: object) -> None:
    print(json.dumps({"case": case, **values}), flush=True)


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def hvp_cost(model, batch, repeats: int) -> None:
    params = [p for p in model.parameters()]
    x, y = batch

    def gradient():
        return torch.autograd.grad(F.cross_entropy(model(x), y), params)

    grad_s, _ = timed(gradient, repeats)
    out = {"grad_s": round(grad_s, 4)}
    v = torch.randn(sum(p.numel() for p in params), generator=torch.Generator().manual_seed(1))
    for method in ("reverse", "forward"):
        with HessianOperator(model, F.cross_entropy, batch, method=method) as op:
            op.matvec(v)  # builds the cached gradient graph ("reverse"), warms up
            seconds, _ = timed(lambda op=op: op.matvec(v), repeats)
        out[f"hvp_{method}_s"] = round(seconds, 4)
        out[f"hvp_{method}_in_grads"] = round(seconds / grad_s, 2)
    emit("hvp_cost", **out)


def pyhessian_curve(model, batch, max_iter: int) -> list[tuple[int, float, float]]:
    """(products, estimate, seconds since start) at every product of PyHessian's power iteration."""
    import pyhessian  # noqa: F401  (the package's `hessian` name is the class, not the module)
    from pyhessian import utils

    pyh_module = sys.modules["pyhessian.hessian"]

    curve: list[tuple[int, float, float]] = []
    original = pyh_module.hessian_vector_product
    start = time.perf_counter()

    def counted(grads, params, v):
        hv = original(grads, params, v)
        estimate = float(utils.group_product(hv, v))
        curve.append((len(curve) + 1, estimate, time.perf_counter() - start))
        return hv

    pyh_module.hessian_vector_product = counted
    try:
        torch.manual_seed(0)
        h = pyh_module.hessian(model, F.cross_entropy, data=batch, cuda=False)
        start = time.perf_counter()  # the products' clock (PyHessian's setup is one gradient)
        h.eigenvalues(maxIter=max_iter, tol=1e-12)
    finally:
        pyh_module.hessian_vector_product = original
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pyhessian-iters", type=int, default=150)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        # On a shared machine one thread avoids OpenMP spin-waits that make timings erratic.
        torch.set_num_threads(args.threads)
    model, batch = problem()
    emit(
        "setup",
        threads=torch.get_num_threads(),
        params=sum(p.numel() for p in model.parameters()),
        torch=torch.__version__,
    )
    hvp_cost(model, batch, args.repeats)

    reference = eigenvalues(model, F.cross_entropy, batch, tol=1e-7, max_iter=120)
    top = float(reference.values[0])
    emit(
        "converged",
        lambda_max=top,
        matvecs=reference.matvecs,
        residual=float(reference.residuals[0]),
    )

    seconds, result = timed(lambda: eigenvalues(model, F.cross_entropy, batch), args.repeats)
    value = float(result.values[0])
    emit(
        "gradsight_default",
        lambda_max=value,
        rel_error=abs(value / top - 1),
        matvecs=result.matvecs,
        seconds=round(seconds, 3),
    )
    gs_seconds = seconds

    try:
        curve = pyhessian_curve(model, batch, args.pyhessian_iters)
    except ImportError:
        emit("pyhessian", skipped="pip install pyhessian")
        curve = []
    if curve:
        # PyHessian's own stopping rule: |e_i - e_{i-1}| / (|e_{i-1}| + 1e-6) < tol = 1e-3.
        stop = next(
            (
                i
                for i in range(1, len(curve))
                if abs(curve[i][1] - curve[i - 1][1]) / (abs(curve[i - 1][1]) + 1e-6) < 1e-3
            ),
            len(curve) - 1,
        )
        n, value, at = curve[stop]
        emit(
            "pyhessian_default",
            lambda_max=value,
            rel_error=abs(value / top - 1),
            matvecs=n,
            seconds=round(at, 3),
        )
        within = [abs(e / top - 1) <= 1e-3 for _, e, _ in curve]
        first = next((i for i in range(len(curve)) if all(within[i:])), None)
        if first is None:
            emit(
                "pyhessian_to_0.1pct",
                reached=False,
                matvecs=len(curve),
                rel_error=abs(curve[-1][1] / top - 1),
            )
        else:
            n, value, at = curve[first]
            emit(
                "pyhessian_to_0.1pct",
                lambda_max=value,
                rel_error=abs(value / top - 1),
                matvecs=n,
                seconds=round(at, 3),
                speedup_of_gradsight=round(at / gs_seconds, 2),
            )

    seconds, low = timed(lambda: eigenvalues(model, F.cross_entropy, batch, which="SA"), 1)
    emit(
        "gradsight_lambda_min",
        lambda_min=float(low.values[0]),
        matvecs=low.matvecs,
        converged=low.converged,
        seconds=round(seconds, 3),
    )


if __name__ == "__main__":
    main()

"""Does gradsight name the pathology of models written the way public projects write them?

    python benchmarks/zoo.py                         # the whole zoo (a few minutes)
    python benchmarks/zoo.py --only "gpt2/*" --quick
    python benchmarks/zoo.py --overhead --markdown build/zoo.md

Runs every scenario of `gradsight.zoo` (GPT-2 and BERT from Hugging Face configs, the
pytorch/examples MNIST CNN and word language model, a torchvision-style ResNet; each
healthy or with one injected pathology) under `gs.watch`, then `gs.diagnose`. Progress goes
to stderr; stdout gets one JSON line per scenario (expected kinds, findings in order with
severities, verdict, loss start/end, the family's direct measurements, seconds) and a final
summary line: recall, false-alarm rate, precision over warnings. The markdown table
(scenario | expected | found | verdict) is written to --markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from gradsight.zoo import ZooResult, run_zoo, select


def _rounded(value):
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _line(result: ZooResult) -> dict:
    return {"benchmark": "zoo", **_rounded(result.to_dict())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="id globs, e.g. 'gpt2/*'")
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--overhead", action="store_true", help="also time bare training")
    parser.add_argument("--markdown", default="build/zoo.md", help="where the table goes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    total = len(select(args.only))
    done = []

    def progress(result: ZooResult) -> None:
        done.append(result)
        verdict = "right" if result.right else "WRONG"
        found = ", ".join(f"{k}:{s[0]}" for k, s in result.findings) or "-"
        if result.error:
            found = f"error: {result.error}"
        print(
            f"[{len(done)}/{total}] {result.id}: {verdict} ({found}) {result.wall_s:.1f}s",
            file=sys.stderr,
            flush=True,
        )
        print(json.dumps(_line(result)), flush=True)

    report = run_zoo(
        args.only, quick=args.quick, seed=args.seed, overhead=args.overhead, on_result=progress
    )
    summary = {
        "benchmark": "zoo",
        "case": "summary",
        "quick": args.quick,
        "threads": args.threads,
        **_rounded(report.summary()),
        "cpus": os.cpu_count(),
        "load_1min": round(os.getloadavg()[0], 2),  # the machine may be shared: read with care
    }
    print(json.dumps(summary), flush=True)
    path = Path(args.markdown)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.markdown())
    print(f"table written to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""`AutoWatch`: watch every model whose optimizer steps, without touching the training code.

```python
with AutoWatch("runs/mine") as auto:
    train()                     # any code that builds models and optimizers and steps them
runs = auto.close("finished")  # one Watched per model: .watch, .history, .run
```

How the pieces are found, with torch's global hooks only:
- The model: a global module forward pre-hook (and an always-called forward hook, which keeps
  the nesting depth) remembers the top-level modules called with autograd on. At the first
  step of an optimizer (global optimizer step pre-hook) the model is the remembered module
  whose parameters contain all of the optimizer's (the largest, if several do); it gets
  `gs.watch(model, optimizer)`. An optimizer whose parameters no single model holds gets a
  watch of exactly its parameters, named as in the modules that own them, without
  activation statistics (no forward pass of it is ever seen).
- The first step is measured: the watch is made in the global pre-hook, and registers its
  own step pre-hook on the optimizer, which torch calls right after the global ones in the
  same step (it iterates a live view of the optimizer's hook dict).
- The loss: torch has no global backward hook, so `torch.autograd.backward` (which
  `Tensor.backward` calls) is replaced while the AutoWatch is installed and restored when it
  is removed. Each one-element tensor back-propagated is kept (detached, on its device); at
  the next optimizer step their sum, the objective whose gradient that step applies, is
  logged as `loss` to that optimizer's watch (loss / k over k accumulation micro-batches
  sums to the mean loss). Under a GradScaler the backward root is the scaled loss, and so is
  what is logged.

Several optimizers: one watch per model, made by the first of its optimizers that steps
(another optimizer of the same model is noted in `skipped`); the first watch writes
`run_dir`, the later ones `run_dir/<ModelClass>`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules.module import (
    register_module_forward_hook,
    register_module_forward_pre_hook,
)
from torch.optim.optimizer import register_optimizer_step_pre_hook

from gradsight.errors import InputError
from gradsight.integrations.owners import (
    TopModules,
    owning_model,
    parameter_holder,
    parameters_of,
)
from gradsight.telemetry.history import History
from gradsight.telemetry.optimizer_info import unwrap_optimizer
from gradsight.telemetry.run_dir import RunDir
from gradsight.telemetry.watch import Watch


@dataclass
class Watched:
    """One watch made by an AutoWatch.

    Attributes:
        watch: The Watch.
        model: What it watches: the model, or a holder of the optimizer's parameters.
        optimizer: The optimizer whose first step made it.
        run: Its run directory (None without one).
        found: Whether a model holding every parameter of the optimizer was found (False:
            a holder, no activation statistics).
    """

    watch: Watch
    model: nn.Module
    optimizer: Any
    run: RunDir | None
    found: bool

    @property
    def history(self) -> History:
        """The rows recorded."""
        return self.watch.history


class AutoWatch:
    """Watches every model whose optimizer steps while installed (see the module docstring).

    Args:
        run_dir: Where the first watch writes its run (later ones in subfolders); None keeps
            the histories in memory.
        config: Recorded in each run.json's config (the script, its arguments, ...).
        notify: Called with one line when a watch starts (which model, which optimizer).
        **watch_options: Passed to `gs.watch` (every, updates_every, activations_every, ...).
    """

    def __init__(
        self,
        run_dir: str | Path | None = None,
        *,
        config: dict[str, Any] | None = None,
        notify: Callable[[str], None] | None = None,
        **watch_options: Any,
    ) -> None:
        for taken in ("optimizer", "history", "run_dir"):
            if taken in watch_options:
                raise InputError(f"AutoWatch sets {taken!r} itself; do not pass it")
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.config = dict(config or {})
        self.notify = notify
        self.watch_options = watch_options
        self.watched: list[Watched] = []
        self.skipped: list[str] = []  # optimizers of an already watched model
        self._by_optimizer: dict[int, Watched | None] = {}
        self._roots = TopModules()
        self._losses: list[Tensor] = []
        self._handles: list[Any] = []
        self._backward: Callable[..., Any] | None = None
        self._closed = False

    # ---- install and remove ----------------------------------------------------------------

    def install(self) -> AutoWatch:
        """Register the global hooks and replace `torch.autograd.backward`."""
        if self._handles:
            return self
        self._handles = [
            register_module_forward_pre_hook(self._roots.enter),
            register_module_forward_hook(self._roots.leave, always_call=True),
            register_optimizer_step_pre_hook(self._before_step),
        ]
        original = self._backward = torch.autograd.backward

        def backward(tensors: Any, *args: Any, **kwargs: Any) -> Any:
            self._keep_loss(tensors)
            return original(tensors, *args, **kwargs)

        backward.__wrapped__ = original  # type: ignore[attr-defined]
        torch.autograd.backward = backward
        return self

    def remove(self) -> None:
        """Remove the global hooks and restore `torch.autograd.backward` (the watches stay
        open until `close`)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if self._backward is not None:
            torch.autograd.backward = self._backward
            self._backward = None

    def close(self, status: str = "finished") -> list[Watched]:
        """Remove the hooks, close every watch with `status` and finish its run directory."""
        self.remove()
        if not self._closed:
            self._closed = True
            for watched in self.watched:
                watched.watch.close(status)
                if watched.run is not None:
                    watched.run.finish(status, meta=watched.history.meta)
        return self.watched

    def __enter__(self) -> AutoWatch:
        return self.install()

    def __exit__(self, kind: type[BaseException] | None, error: Any, traceback: Any) -> None:
        self.remove()

    # ---- what the hooks do -----------------------------------------------------------------

    def _keep_loss(self, tensors: Any) -> None:
        roots = [tensors] if isinstance(tensors, Tensor) else tensors
        if isinstance(roots, (list, tuple)):
            self._losses += [t.detach() for t in roots if isinstance(t, Tensor) and t.numel() == 1]

    def _pop_loss(self) -> Tensor | None:
        losses, self._losses = self._losses, []
        if not losses:
            return None
        if len(losses) == 1:
            return losses[0]
        first = losses[0]
        return torch.stack([t.reshape(()).to(first.device, torch.float32) for t in losses]).sum()

    def _before_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        loss = self._pop_loss()
        key = id(optimizer)
        first = key not in self._by_optimizer
        if first:
            try:
                self._by_optimizer[key] = self._start(optimizer)
            except Exception as error:  # watching must never stop the training it watches
                self._by_optimizer[key] = None
                self.skipped.append(f"{type(optimizer).__name__}: cannot watch it ({error})")
        watched = self._by_optimizer[key]
        if watched is None:
            return
        if not watched.found and not first:
            # A holder's forward never runs, and a watch's step begins with its model's forward.
            with torch.enable_grad():
                watched.watch.begin_step()
        if loss is not None:
            watched.watch.log(loss=loss)

    def _start(self, optimizer: Any) -> Watched | None:
        params = parameters_of(unwrap_optimizer(optimizer))
        candidates = self._roots.alive()
        model = owning_model(params, candidates)
        found = model is not None
        if found and any(w.model is model for w in self.watched):
            name = type(optimizer).__name__
            self.skipped.append(f"{name} of {type(model).__name__} (watched already)")
            return None
        options = dict(self.watch_options)
        if not found:
            model = parameter_holder(params, candidates)
            options["activations_every"] = 0
        run = self._run_dir(model, optimizer, found)
        history = History(run.metrics_dir if run is not None else None)
        watch = Watch(model, optimizer, history=history, **options)
        watched = Watched(watch, model, optimizer, run, found)
        self.watched.append(watched)
        if self.notify is not None:
            what = type(model).__name__ if found else f"{len(params)} parameters"
            where = f" -> {run.path}" if run is not None else ""
            self.notify(f"watching {what} with {type(optimizer).__name__}{where}")
        return watched

    def _run_dir(self, model: nn.Module, optimizer: Any, found: bool) -> RunDir | None:
        if self.run_dir is None:
            return None
        path = self.run_dir
        if self.watched:
            stem = type(model).__name__ if found else type(optimizer).__name__
            path = self.run_dir / stem
            index = 2
            while path.exists():
                path, index = self.run_dir / f"{stem}{index}", index + 1
        model_name = type(model).__name__ if found else None
        config = {
            **self.config,
            "model": model_name,
            "optimizer": type(optimizer).__name__,
            "watch": self.watch_options,
            "integration": "auto",
        }
        return RunDir(path, config)

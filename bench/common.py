"""What every benchmark shares: threads and quiet logs, the machine line, the data, lipo's own
training step timed on given batches, interleaved rounds, and the headline ``name=value``.

Benchmarks run on shared, noisy machines: each one measures its baseline in the same process,
interleaved in rounds where it can, and reports ratios. Absolute times mean something only on
a GPU or an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from accelerate import Accelerator  # noqa: E402

from lipo.config import RunConfig  # noqa: E402
from lipo.training import fit as train  # noqa: E402
from lipo.training.resume import Progress  # noqa: E402
from lipo.training.steps import Steps  # noqa: E402
from lipo.training.trial_run import TrialRun, Workspace  # noqa: E402


def parser(doc: str) -> argparse.ArgumentParser:
    """The flags every benchmark takes; ``doc`` is its module docstring."""
    p = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    p.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("OMP_NUM_THREADS", "1")),
        help="torch CPU threads (default OMP_NUM_THREADS, else 1)",
    )
    p.add_argument(
        "--precision",
        choices=["fp32", "bf16", "fp16"],
        default="fp32",
        help="Accelerate's mixed precision for lipo's own steps (default fp32)",
    )
    return p


PRECISION = ["fp32"]  # set by setup(); every accelerator() of the benchmark uses it


def setup(threads: int, precision: str = "fp32") -> None:
    from lipo.runtime.distributed import quieten

    torch.set_num_threads(threads)
    PRECISION[0] = precision
    quieten(True)  # the launcher's own log settings: warnings only


def machine() -> str:
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only"
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        f"machine: {os.cpu_count()} CPUs, {device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; {now:%Y-%m-%d %H:%M} UTC"
    )


def headline(name: str, value: float) -> None:
    """The last line of every benchmark."""
    print(f"{name}={value:.3g}", flush=True)


def workspace(split: str = "random", seed: int = 0) -> Workspace:
    return Workspace.load(None, split, seed, strict=False)  # LIPO_DATA_DIR or the cached file


def accelerator() -> Accelerator:
    from lipo.runtime.devices import PRECISIONS

    return Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=PRECISIONS[PRECISION[0]])


def trial_run(cfg: RunConfig, ws: Workspace, on_epoch=None) -> TrialRun:
    """lipo's own trial: its backbone, tokenizer, model and loaders."""
    return TrialRun(cfg, ws, accelerator(), on_epoch)


class StepTimer:
    """Times lipo's training step (``lipo.training.steps.Steps.train_epoch`` on fine-tuning's
    loss) on any iterable of batches."""

    def __init__(self, model, cfg: RunConfig, acc: Accelerator):
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        # Constant rate: speed does not depend on the schedule.
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
        model, optimizer, scheduler = acc.prepare(model, optimizer, scheduler)
        self.steps = Steps(acc, model, optimizer, scheduler, clip=cfg.grad_clip)
        self.regression = train.Regression(model, acc, cfg.lr)

    def seconds(self, batches: Iterable[dict], n: int) -> float:
        """Time of ``n`` training steps on the next ``n`` of ``batches``."""
        loader = Sized(batches, n, self.steps.accelerator.device)
        started = time.perf_counter()
        # One epoch of lipo's steps from a fresh start (nothing saved or resumed).
        self.steps.train_epoch(loader, Progress(), self.regression, bar="epoch 0")
        synchronise()
        return time.perf_counter() - started


class Sized:
    """The next ``n`` batches of an iterator, on ``device``, as a loader with a length."""

    def __init__(self, batches: Iterable[dict], n: int, device):
        self.batches, self.n, self.device = iter(batches), n, device

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[dict]:
        for batch in itertools.islice(self.batches, self.n):
            yield on_device(batch, self.device)


def on_device(batch: dict, device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


def synchronise() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def endless(make: Callable[[], Iterable[dict]]) -> Iterator[dict]:
    """Batches from ``make()``, started again whenever it runs out."""
    return itertools.chain.from_iterable(make() for _ in itertools.count())


def interleaved(contenders: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Total seconds of each contender over ``rounds`` rounds, run in turn within a round, so
    that a shared machine's load falls on all of them alike."""
    spent = dict.fromkeys(contenders, 0.0)
    for _ in range(rounds):
        for name, measure in contenders.items():
            spent[name] += measure()
    return spent


class Tally:
    """Counts the molecules that pass through, so each rate divides by what was trained."""

    def __init__(self, batches):
        self.batches, self.molecules = batches, 0

    def take(self, n: int):
        for batch in itertools.islice(self.batches, n):
            self.molecules += len(batch["labels"])
            yield batch


def molecule_rates(
    contenders: dict[str, tuple[StepTimer, Tally]], batches: int, rounds: int
) -> dict[str, float]:
    """Molecules per second of each contender's (timer, batches): one warm-up step each (it
    warms up allocators and kernels), then ``batches`` timed batches each in ``rounds``
    interleaved rounds."""
    for timer, tally in contenders.values():
        timer.seconds(tally.take(1), 1)
        tally.molecules = 0
    chunk = max(1, batches // rounds)
    spent = interleaved(
        {n: (lambda t=t, s=s: t.seconds(s.take(chunk), chunk)) for n, (t, s) in contenders.items()},
        rounds,
    )
    return {n: tally.molecules / spent[n] for n, (_, tally) in contenders.items()}


def timed_launch(
    args: list[str], folder: Path, threads: int | None, env: dict | None = None
) -> tuple[float, float]:
    """(wall-clock start, seconds to exit) of ``launch.py ARGS`` as a fresh process in
    ``folder``. ``threads``: its OMP/MKL threads; None leaves them unset (``--workers`` then
    divides the cores). ``env``: more variables. Stops the benchmark if the launch fails."""
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")},
        **(env or {}),
    }
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    wall, started = time.time(), time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(ROOT / "launch.py"), *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"launch.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return wall, time.perf_counter() - started

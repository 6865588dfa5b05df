"""Influence scores: LiSSA against the exact solve (time, Spearman agreement, top-k overlap),
and what the score cache saves in a sweep over k.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 LIPO_DATA_DIR=../shared/data python bench/influence.py \
        [--quick] [--strategy-head]

Problems, each on a model fine-tuned for one epoch and the external pool, through the influence
strategy's own code (``lipo.strategies.influence``, ``lipo.strategies.influence_math``):
  head      the regression head (hidden width 16: 2,081 parameters on ``mini``, under the
            strategy's limit for the exact solve), every training molecule
  lora      a head with as many parameters as LoRA r=2 on mini's query/key/value (6,144;
            hidden 48: 6,241), its Hessian on 512 training molecules
(the exact Hessian's cost grows with parameters squared times molecules: these sizes keep the
run to minutes on one CPU thread)
  strategy  with ``--strategy-head``: the head the strategy itself scores with (as wide as the
            encoder: 16,641 parameters on ``mini``), every training molecule; its exact
            Hessian took 19 minutes on one thread and the process 10.5 GB of memory
Exact: the Hessian that ``lipo.strategies.influence_math.exact_ihvp`` builds, here in chunks of
columns (in
one piece it would need tens of GB), then a dense solve; its lowest eigenvalue is printed.
LiSSA: the strategy's solver and defaults (depth 500, 2 repeats, batches of 256, scale from
power iteration), at the strategy's damping 0.01 and at 1.1 |lowest eigenvalue| + 0.01
(LiSSA's series diverges when H + damping I has a negative eigenvalue). The strategy raises a
damping below -lowest itself (``lipo.strategies.influence_math.safe_damping``); the exact solve
here uses the damping the strategy actually used, so both solve the same system.
Then the strategy's score cache in a sweep over k = 64, 100, 278: uncached, every k recomputes
the scores (fine-tune + LiSSA); cached, the first k does and the others read them.
The last line is ``lissa_speedup_lora=X`` (exact / LiSSA time, lora problem, damping 0.01).
``--quick`` uses the ``tiny`` encoder and smaller problems.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import headline, machine, parser, setup, trial_run, workspace
from scipy.stats import spearmanr
from torch.func import grad, jacrev

from lipo.config import RunConfig
from lipo.data.pool import load_pool
from lipo.strategies import influence as strategy
from lipo.strategies.influence_math import HeadLoss, influence_scores, safe_damping
from lipo.strategies.influence_math import lowest_eigenvalue as lanczos_lowest

SWEEP_K = (64, 100, 278)


def head_problem(backbone: str, hidden: int, n_hessian: int | None, seed: int = 0):
    """(HeadLoss, train inputs, val gradient, pool inputs) of a freshly fine-tuned model."""
    cfg = RunConfig(backbone=backbone, strategy="influence", epochs=1, head_hidden=hidden)
    run = trial_run(cfg, workspace())
    pool = load_pool(run)
    model = run.fit(run.new_model(), run.split.train, report=False).model
    extra = run.extend(list(pool["smiles"]), pool["label"].to_numpy(np.float32))
    head, train, val, in_pool = strategy.head_inputs(
        run, model, [np.asarray(run.split.train), np.asarray(run.split.val), extra]
    )
    if n_hessian is not None:  # a fixed subsample, the same for both solvers
        keep = torch.randperm(len(train[0]), generator=torch.Generator().manual_seed(seed))
        train = tuple(t[keep[:n_hessian]] for t in train)
    loss = HeadLoss(head, [n for n, _ in head.named_parameters()])
    return run, loss, train, loss.mean_grad(*val), in_pool


def hessian_by_columns(loss: HeadLoss, x, y, chunk: int = 128) -> torch.Tensor:
    """The training-loss Hessian that ``lipo.strategies.influence_math.exact_ihvp`` builds in
    one piece, here ``chunk`` columns at a time (in one piece it needs tens of GB for these
    problems)."""
    return jacrev(grad(loss.mean), chunk_size=chunk)(loss.theta, x.double(), y.double())


def lowest_eigenvalue(h: torch.Tensor, iterations: int = 300) -> float:
    """By power iteration on (c I - H), c the largest eigenvalue (eigvalsh is minutes here)."""

    def top(m):
        v = torch.ones(len(m), dtype=m.dtype)
        for _ in range(iterations):
            v = m @ v
            v = v / v.norm()
        return float(v @ m @ v)

    c = top(h)
    return c - top(c * torch.eye(len(h), dtype=h.dtype) - h)


def timed(solve):
    started = time.perf_counter()
    out = solve()
    return out, time.perf_counter() - started


def agreement(loss, exact, lissa, x_pool, y_pool) -> tuple[float, float]:
    """Spearman of the pool's scores, and the overlap of their top 64."""
    s_exact = influence_scores(loss, exact, x_pool, y_pool).numpy()
    s_lissa = influence_scores(loss, lissa, x_pool, y_pool).numpy()
    k = min(64, len(s_exact))
    top = len(set(np.argsort(-s_exact)[:k]) & set(np.argsort(-s_lissa)[:k])) / k
    return spearmanr(s_exact, s_lissa).statistic, top


def compare(name: str, backbone: str, hidden: int, n_hessian: int | None) -> float:
    """Exact / LiSSA time at the strategy's damping; agreement there and at a damping that
    makes H + damping I positive (LiSSA's series diverges otherwise)."""
    run, loss, (x, y), g, (x_pool, y_pool) = head_problem(backbone, hidden, n_hessian)
    h, t_hessian = timed(lambda: hessian_by_columns(loss, x, y))
    lowest = lowest_eigenvalue(h)
    print(
        f"{name:5s} {len(loss.theta):6d} parameters, {len(x)} training molecules; Hessian "
        f"{t_hessian:.1f} s, lowest eigenvalue {lowest:.3g}",
        flush=True,
    )
    estimated = lanczos_lowest(loss, x, y)  # the strategy's own estimate, checked against h
    print(f"  the strategy's Lanczos estimate of the lowest eigenvalue: {estimated:.3g}")
    ratio = None
    for damping in (strategy.KNOBS["damping"], 1.1 * max(0.0, -lowest) + 0.01):
        used = safe_damping(damping, estimated)  # what the strategy's solve will use
        eye = used * torch.eye(len(g), dtype=h.dtype)
        exact, t_solve = timed(lambda: torch.linalg.solve(h + eye, g))
        knobs = {**strategy.KNOBS, "damping": damping}
        lissa, t_lissa = timed(lambda: strategy.solve(run, loss, x, y, g, knobs))
        rho, top = agreement(loss, exact, lissa, x_pool, y_pool)
        t_exact = t_hessian + t_solve
        ratio = ratio or t_exact / t_lissa  # the strategy's own damping comes first
        print(
            f"  damping {damping:g} (used {used:.3g}): exact {t_exact:6.1f} s, "
            f"LiSSA {t_lissa:6.1f} s "
            f"({t_exact / t_lissa:.2f}x); |ihvp| exact {float(exact.norm()):.3g}, LiSSA "
            f"{float(lissa.norm()):.3g}; Spearman {rho:.3f}, top-64 overlap {top:.2f}",
            flush=True,
        )
    return ratio


def cache_sweep(backbone: str, hidden: int) -> float:
    """Scoring time of a sweep over k without and with the strategy's score cache."""
    cfg = RunConfig(backbone=backbone, strategy="influence", epochs=1, head_hidden=hidden)
    run = trial_run(cfg, workspace())
    pool = load_pool(run)
    spent = []
    with tempfile.TemporaryDirectory(prefix="bench-influence-") as tmp:
        strategy.CACHE = Path(tmp)  # never the project's mlruns/
        for k in SWEEP_K:
            knobs = {**strategy.KNOBS, "k": k}
            _, seconds = timed(lambda: strategy.cached_scores(run, pool, knobs))
            spent.append(seconds)
    uncached, cached = len(SWEEP_K) * spent[0], sum(spent)
    print(
        f"cache: sweep over k={SWEEP_K}: scoring {spent[0]:.1f} s on a miss, "
        f"{np.mean(spent[1:]):.3f} s on a hit; uncached {uncached:.1f} s, cached {cached:.1f} s "
        f"({uncached / cached:.2f}x)",
        flush=True,
    )
    return uncached / cached


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--quick", action="store_true", help="tiny encoder, small problems")
    p.add_argument(
        "--strategy-head",
        action="store_true",
        help="also the strategy's own head (the encoder's width), every molecule",
    )
    args = p.parse_args()
    setup(args.threads)
    print(machine())
    if args.quick:  # tiny: width 32; heads of 1,089 and 3,265 parameters
        compare("head", "tiny", 32, None)
        ratio = compare("lora", "tiny", 96, 512)
        cache_sweep("tiny", 32)
    else:
        compare("head", "mini", 16, None)
        ratio = compare("lora", "mini", 48, 512)
        cache_sweep("mini", 16)
    if args.strategy_head:  # head_hidden 0: as wide as the encoder, the strategy's default
        compare("strategy", "tiny" if args.quick else "mini", 0, None)
    headline("lissa_speedup_lora", ratio)


if __name__ == "__main__":
    main()

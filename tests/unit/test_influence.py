"""Influence on small problems: LiSSA agrees with the exact solve, and on a convex problem
the scores predict what adding an example really does to the validation loss."""

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

from lipo.strategies.influence_math import (
    HeadLoss,
    exact_ihvp,
    influence_scores,
    lissa_ihvp,
    lowest_eigenvalue,
    safe_damping,
    top_eigenvalue,
)


def problem(seed=0, n=200, d=6):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(d, generator=g)
    x = torch.randn(n, d, generator=g)
    y = x @ w + 0.3 * torch.randn(n, generator=g)
    return x, y


def fitted_linear(x, y, damping):
    """Ridge solution of mean squared error + damping/2 |w|^2 (a convex head)."""
    head = nn.Linear(x.shape[1], 1, bias=False).double()
    a = 2 * x.double().T @ x.double() / len(x) + damping * torch.eye(
        x.shape[1], dtype=torch.float64
    )
    with torch.no_grad():
        head.weight.copy_(
            torch.linalg.solve(a, 2 * x.double().T @ y.double() / len(x)).unsqueeze(0)
        )
    return head


def test_lissa_agrees_with_exact_on_a_small_mlp():
    x, y = problem()
    torch.manual_seed(0)
    head = nn.Sequential(nn.Linear(6, 8), nn.GELU(), nn.Linear(8, 1))
    optimiser = torch.optim.Adam(head.parameters(), lr=0.01)
    for _ in range(1500):  # influence is taken at a trained minimum, as in the strategy
        optimiser.zero_grad()
        ((head(x).squeeze(-1) - y) ** 2).mean().backward()
        optimiser.step()
    loss = HeadLoss(head, [n for n, _ in head.named_parameters()])
    xv, yv = problem(seed=1, n=50)
    xp, yp = problem(seed=2, n=40)
    g = loss.mean_grad(xv, yv)
    exact = exact_ihvp(loss, x, y, g, damping=0.1)
    norms = []
    scale = 1.5 * (top_eigenvalue(loss, x, y) + 0.1)
    lissa = lissa_ihvp(
        loss,
        x,
        y,
        g,
        damping=0.1,
        scale=scale,
        depth=600,
        repeats=2,
        batch_size=200,
        seed=0,
        log=lambda it, norm: norms.append(norm),
    )
    a = influence_scores(loss, exact, xp, yp).numpy()
    b = influence_scores(loss, lissa, xp, yp).numpy()
    assert spearmanr(a, b).statistic >= 0.95
    tail = np.array(norms[-100:])  # stochastic batches: converged means it settled down
    assert len(norms) == 600 and tail.std() < 0.05 * tail.mean()


def val_loss(head, x, y):
    with torch.no_grad():
        return float(((head(x.double()).squeeze(-1) - y.double()) ** 2).mean())


def test_scores_predict_the_effect_of_adding_an_example():
    damping = 0.01
    x, y = problem(n=60)
    xv, yv = problem(seed=1, n=100)
    xp, yp = problem(seed=2, n=30)
    yp = yp + torch.linspace(-3, 3, 30)  # some pool labels are misleading
    head = fitted_linear(x, y, damping)
    loss = HeadLoss(head, ["weight"])
    s = exact_ihvp(loss, x, y, loss.mean_grad(xv, yv), damping)
    scores = influence_scores(loss, s, xp, yp).numpy()
    before = val_loss(head, xv, yv)
    for pick, should_lower in ((int(np.argmax(scores)), True), (int(np.argmin(scores)), False)):
        x2, y2 = torch.cat([x, xp[pick : pick + 1]]), torch.cat([y, yp[pick : pick + 1]])
        after = val_loss(fitted_linear(x2, y2, damping), xv, yv)
        assert (after < before) == should_lower, (pick, before, after)


def test_negative_curvature_is_found_and_damped_until_lissa_agrees_with_exact():
    """A head stopped early is not at a minimum: its Hessian has negative eigenvalues, and
    a small damping would make LiSSA diverge. The checked damping makes both solves agree."""
    x, y = problem()
    torch.manual_seed(0)
    head = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1))
    optimiser = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(30):
        optimiser.zero_grad()
        ((head(x).squeeze(-1) - y) ** 2).mean().backward()
        optimiser.step()
    loss = HeadLoss(head, [n for n, _ in head.named_parameters()])
    true_lowest = float(
        torch.linalg.eigvalsh(
            torch.func.hessian(loss.mean)(loss.theta, x.double(), y.double())
        ).min()
    )
    assert true_lowest < -0.01  # the situation this guards against
    top = top_eigenvalue(loss, x, y)
    lowest = lowest_eigenvalue(loss, x, y)
    assert lowest == pytest.approx(true_lowest, rel=1e-3)
    damping = safe_damping(0.01, lowest)
    assert damping + true_lowest > 0
    assert safe_damping(0.5, 0.2) == 0.5  # positive definite already: left alone
    g = loss.mean_grad(*problem(seed=1, n=50))
    xp, yp = problem(seed=2, n=40)
    exact = influence_scores(loss, exact_ihvp(loss, x, y, g, damping), xp, yp).numpy()
    lissa = influence_scores(
        loss,
        lissa_ihvp(
            loss,
            x,
            y,
            g,
            damping,
            1.5 * (top + damping),
            depth=600,
            repeats=2,
            batch_size=200,
            seed=0,
        ),
        xp,
        yp,
    ).numpy()
    assert spearmanr(exact, lissa).statistic >= 0.95


def test_a_lissa_series_still_moving_is_reported(caplog):
    from lipo.strategies.influence import check_converged

    class Run:
        logged = {}

        def log(self, metrics, step):
            self.logged.update(metrics)

    run = Run()
    check_converged(run, [1.0] * 90 + [1.0 + 0.001 * i for i in range(10)])
    assert run.logged["influence/lissa_tail_drift"] < 0.05 and not caplog.records
    # settled, with each batch's jitter (±20%, as on mini's head): not a warning
    jitter = np.random.default_rng(0).uniform(-0.2, 0.2, 500)
    check_converged(run, list(1.0 + jitter))
    assert run.logged["influence/lissa_tail_drift"] < 0.05 and not caplog.records
    check_converged(run, [0.04 * 1.01**i for i in range(500)])  # the real model's run
    assert run.logged["influence/lissa_tail_drift"] > 0.05
    assert "had not converged after 500 iterations" in caplog.text


class LoggedRun:
    """What the strategy's solve functions need of a trial: a metric log."""

    def __init__(self):
        self.logged = {}

    def log(self, metrics, step):
        self.logged.update(metrics)


def trained_head(width, n, steps, seed=0):
    """The strategy's head shape (Linear-GELU-Linear), briefly trained on a smooth target."""
    from lipo.models.regressor import RegressionHead

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, width, generator=g)
    y = torch.tanh(x @ torch.randn(width, generator=g) / width**0.5) + 0.3 * torch.randn(
        n, generator=g
    )
    torch.manual_seed(seed)
    head = RegressionHead(width, width, dropout=0.0)
    optimiser = torch.optim.Adam(head.parameters(), lr=1e-3)
    for _ in range(steps):
        optimiser.zero_grad()
        ((head(x) - y) ** 2).mean().backward()
        optimiser.step()
    return HeadLoss(head, [n for n, _ in head.named_parameters()]), x, y


def test_conjugate_gradient_agrees_with_the_dense_solve():
    from lipo.strategies.influence_math import cg_ihvp

    loss, x, y = trained_head(width=12, n=300, steps=300)  # 12*12+12 + 12+1 = 169 parameters
    damping = safe_damping(0.01, lowest_eigenvalue(loss, x, y))
    g = loss.mean_grad(x[:50], y[:50])
    dense = exact_ihvp(loss, x, y, g, damping)
    solved = cg_ihvp(loss, x, y, g, damping, tolerance=1e-10)
    assert solved.residual <= 1e-10 and 0 < solved.iterations <= 10 * len(g)
    assert torch.allclose(solved.ihvp, dense, rtol=1e-7, atol=1e-9 * float(dense.abs().max()))


def test_the_exact_solve_runs_on_minis_head_size():
    """16,641 parameters (mini's head, 128 -> 128 -> 1): refused before (limit 6,000)."""
    from lipo.strategies.influence import exact_solve

    loss, x, y = trained_head(width=128, n=1000, steps=100)
    assert len(loss.theta) == 16_641
    g = loss.mean_grad(x[:200], y[:200])
    run = LoggedRun()
    s = exact_solve(run, loss, x, y, g, damping=1.0, tolerance=1e-6)
    assert run.logged["influence/solve_residual"] <= 1e-6
    assert run.logged["influence/cg_iterations"] > 0
    # checked independently of the solver's own bookkeeping
    r = g - loss.hvp(x.double(), y.double(), s) - 1.0 * s
    assert float(r.norm() / g.norm()) <= 1e-6


def test_influence_runs_say_the_hessian_is_the_heads(molecules):
    from lipo.config import RunConfig
    from lipo.data.splits import make_split
    from lipo.invocation import Invocation
    from lipo.study_files import load_study
    from lipo.training.trial_run import Workspace

    ws = Workspace(molecules, make_split("random", molecules, 0), "t")
    inv = Invocation(
        "influence",
        load_study("influence"),
        RunConfig(strategy="influence"),
        1,
        None,
        "sqlite://",
        ws,
    )
    assert inv.tags(inv.base)["lipo.influence.hessian"] == "head"
    assert "lipo.influence.hessian" not in inv.tags(RunConfig(strategy="all"))

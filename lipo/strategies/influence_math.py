"""Influence functions on the regression head, over cached head inputs.

The encoder is frozen for the analysis: its pooled output (plus descriptors) is computed once,
so every gradient and Hessian-vector product costs a pass through the head alone.

Sign: score(z) = g_val . H^-1 . grad L(z), with g_val the gradient of the mean validation loss
and H the Hessian of the mean training loss (plus damping). Adding z with weight 1/n changes
the validation loss by about -score(z)/n: a POSITIVE score predicts that adding the molecule
LOWERS the validation loss (Koh & Liang 2017, with their sign flipped for selection).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh
from torch import nn
from torch.func import functional_call, grad, hessian, vmap


class HeadLoss:
    """Squared error of a head (eval mode: no dropout) on fixed inputs, as a function of a
    flat parameter vector over the chosen parameters. Works on a float64 CPU copy: the
    model's own head stays as it was, wherever it lives."""

    def __init__(self, head: nn.Module, names: list[str]):
        self.head = copy.deepcopy(head).cpu().eval()
        head = self.head
        self.names = names
        params = dict(head.named_parameters())
        self.shapes = [params[n].shape for n in names]
        self.theta = torch.cat([params[n].detach().reshape(-1).double() for n in names])
        self.fixed = {k: v.detach().double() for k, v in params.items() if k not in names}
        self.head.double()

    def unflatten(self, theta: torch.Tensor) -> dict:
        out, start = dict(self.fixed), 0
        for name, shape in zip(self.names, self.shapes):
            size = shape.numel()
            out[name] = theta[start : start + size].reshape(shape)
            start += size
        return out

    def one(self, theta, x, y):
        pred = functional_call(self.head, self.unflatten(theta), (x.unsqueeze(0),)).reshape(())
        return (pred - y) ** 2

    def mean(self, theta, x, y):
        return vmap(self.one, in_dims=(None, 0, 0))(theta, x, y).mean()

    def example_grads(self, x, y) -> torch.Tensor:
        return vmap(grad(self.one), in_dims=(None, 0, 0))(self.theta, x.double(), y.double())

    def mean_grad(self, x, y) -> torch.Tensor:
        return grad(self.mean)(self.theta, x.double(), y.double())

    def hvp(self, x, y, v) -> torch.Tensor:
        _, out = torch.func.jvp(lambda t: grad(self.mean)(t, x, y), (self.theta,), (v,))
        return out


def exact_ihvp(loss: HeadLoss, x, y, g, damping: float) -> torch.Tensor:
    """Solve (H + damping I) s = g with the explicit Hessian: exact, for up to a few
    thousand parameters (memory grows with their square)."""
    h = hessian(loss.mean)(loss.theta, x.double(), y.double())
    h = h + damping * torch.eye(len(g), dtype=h.dtype)
    return torch.linalg.solve(h, g)


@dataclass
class Solved:
    """An inverse-HVP and how well it solves (H + damping I) s = g: the relative residual
    |g - (H + damping I) s| / |g| (recomputed, not the recursion's estimate) and the
    conjugate-gradient iterations it took (0 for the dense solve)."""

    ihvp: torch.Tensor
    residual: float
    iterations: int = 0


def relative_residual(loss: HeadLoss, x, y, g, damping: float, s) -> float:
    r = g - loss.hvp(x.double(), y.double(), s) - damping * s
    return float(r.norm() / g.norm().clamp(min=1e-300))


def cg_ihvp(
    loss: HeadLoss,
    x,
    y,
    g,
    damping: float,
    tolerance: float = 1e-6,
    max_iterations: int | None = None,
) -> Solved:
    """Conjugate gradient on (H + damping I) s = g with Hessian-vector products only: the
    exact solve without the explicit Hessian (mini's head, 16,641 parameters, would need
    2.2 GB for it in float64). Stops when the residual is below ``tolerance`` x |g|; needs
    H + damping I positive definite (``safe_damping``). Each iteration costs one HVP over
    the training inputs, as one LiSSA step over all of them."""
    x, y = x.double(), y.double()
    limit = max_iterations or 10 * len(g)

    def apply(v):
        return loss.hvp(x, y, v) + damping * v

    s, r = torch.zeros_like(g), g.clone()
    p, rr, goal = r.clone(), float(r @ r), tolerance * float(g.norm())
    iterations = 0
    while iterations < limit and rr**0.5 > goal:
        ap = apply(p)
        alpha = rr / float(p @ ap)
        s, r = s + alpha * p, r - alpha * ap
        rr, previous = float(r @ r), rr
        p = r + (rr / previous) * p
        iterations += 1
    return Solved(s, relative_residual(loss, x, y, g, damping, s), iterations)


def lissa_ihvp(
    loss: HeadLoss,
    x,
    y,
    g,
    damping: float,
    scale: float,
    depth: int,
    repeats: int,
    batch_size: int,
    seed: int,
    log: Callable[[int, float], None] = lambda it, norm: None,
) -> torch.Tensor:
    """LiSSA (Agarwal et al. 2017): s <- g + s - (H_batch + damping I) s / scale, iterated
    ``depth`` times on random training batches; s / scale, averaged over ``repeats``, tends to
    (H + damping I)^-1 g, the same damping as ``exact_ihvp``. Converges when ``scale`` exceeds
    the largest eigenvalue of H + damping I. ``log(iteration, norm)`` traces the first repeat."""
    generator = torch.Generator().manual_seed(seed)
    x, y = x.double(), y.double()
    total = torch.zeros_like(g)
    for repeat in range(repeats):
        s = g.clone()
        for it in range(depth):
            idx = torch.randint(len(x), (min(batch_size, len(x)),), generator=generator)
            s = g + s - (loss.hvp(x[idx], y[idx], s) + damping * s) / scale
            if repeat == 0:
                log(it + 1, float(s.norm() / scale))
        total += s / scale
    return total / repeats


def top_eigenvalue(loss: HeadLoss, x, y, iterations: int = 50, seed: int = 0) -> float:
    """Largest eigenvalue of the training-loss Hessian by power iteration (LiSSA's scale must
    exceed it, or the recursion diverges)."""
    v = torch.randn(
        len(loss.theta), generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )
    value = 0.0
    for _ in range(iterations):
        hv = loss.hvp(x.double(), y.double(), v / v.norm())
        value, v = float(hv.norm()), hv
    return value


def lowest_eigenvalue(loss: HeadLoss, x, y, tol: float = 1e-4, seed: int = 1) -> float:
    """Lowest eigenvalue of the training-loss Hessian, by Lanczos (ARPACK) on Hessian-vector
    products. A head fine-tuned for a few epochs is often not at a minimum: this can be
    negative. (Power iteration on top I - H underestimated it by 25% in 100 steps.)"""
    n = len(loss.theta)
    xd, yd = x.double(), y.double()
    op = LinearOperator(
        (n, n),
        dtype=np.float64,
        matvec=lambda v: loss.hvp(
            xd, yd, torch.as_tensor(np.ravel(v), dtype=torch.float64)
        ).numpy(),
    )
    start = np.random.default_rng(seed).standard_normal(n)
    try:
        values = eigsh(op, k=1, which="SA", tol=tol, v0=start, return_eigenvectors=False)
    except ArpackNoConvergence as partial:
        if not len(partial.eigenvalues):
            raise
        values = partial.eigenvalues
    return float(np.min(values))


def safe_damping(damping: float, lowest: float, margin: float = 1.1) -> float:
    """A damping that makes H + damping I positive definite: below -lowest, LiSSA's series
    diverges (norms of 1e10 and more measured) and the exact solve inverts an indefinite
    matrix, so their scores mean nothing. Raised to ``margin`` x -lowest when too small."""
    return damping if lowest + damping > 0 else margin * -lowest + damping


def influence_scores(loss: HeadLoss, ihvp: torch.Tensor, x_pool, y_pool) -> torch.Tensor:
    """score(z) = ihvp . grad L(z); positive: adding z is predicted to lower the val loss."""
    return loss.example_grads(x_pool, y_pool) @ ihvp

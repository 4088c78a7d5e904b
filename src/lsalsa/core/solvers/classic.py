"""Batched ISTA, FISTA and SALSA for any number of dictionaries (docs/DESIGN.md section 2)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from ...errors import InputError
from ..objective import _duality_gap, _objective
from ..operators import (
    affine,
    encode_input,
    ista_operators,
    ista_step,
    low_precision_operands,
    salsa_operators,
    salsa_step,
)
from ..problem import DEFAULT_MU, Problem


@dataclass
class SolveResult:
    """What :func:`lsalsa.solve` returns.

    Attributes
    ----------
    codes : array (B, N)
        The estimate (SALSA: the sparse iterate ``u``).
    n_iter : int
        Iterations run (fewer than asked when ``tol`` stopped every sample early).
    gap : array (B,) or None
        Per-sample duality gap of ``codes`` when ``tol`` was given (or for ``method="exact"``).
    converged : bool or None
        Whether every sample reached ``tol``.
    history : dict or None
        ``{"objective": [...], "time": [...]}``, the batch-mean cost and elapsed seconds after
        each iteration, when asked for.
    """

    codes: object
    n_iter: int
    gap: object = None
    converged: bool | None = None
    history: dict | None = field(default=None)
    method: str = ""


def _operands(Y: torch.Tensor, W: torch.Tensor, S: torch.Tensor, low: torch.dtype | None):
    """``b = W y``, the operator the steps take and their ``product``: in ``Y``'s precision,
    or with every product in the low precision ``low`` (as the learned encoders' ``dtype=``)."""
    if low is None:
        return encode_input(Y, W), S, affine
    return low_precision_operands(Y, W, S, low)


class _Ista:
    def __init__(self, problem: Problem, Y: torch.Tensor, operators=None,
                 inplace: bool = False, low: torch.dtype | None = None):
        W, S, self.tau = ista_operators(problem) if operators is None else operators
        self.b, self.S, self.product = _operands(Y, W, S, low)
        self.inplace = inplace

    # The state carries the batch's b = W y, so dropping finished samples drops their b too.
    def start(self, x0):
        return {"b": self.b, "x": x0}

    def step(self, state):
        return {**state, "x": ista_step(state["x"], state["b"], self.S, self.tau,
                                        inplace=self.inplace, product=self.product)}

    @staticmethod
    def codes(state):
        return state["x"]


class _Fista(_Ista):
    """FISTA; with ``restart`` the momentum resets per sample when it points uphill."""

    def __init__(self, problem, Y, restart: bool = False, operators=None,
                 inplace: bool = False, low: torch.dtype | None = None):
        # A restart reads z after the step, so it keeps its own buffers.
        super().__init__(problem, Y, operators, inplace=inplace and not restart, low=low)
        self.restart = restart

    def start(self, x0):
        ones = torch.ones(self.b.shape[0], dtype=self.b.dtype, device=self.b.device)
        return {"b": self.b, "x": x0, "z": x0, "t": ones}

    def step(self, state):
        x_prev, t = state["x"], state["t"]
        x = ista_step(state["z"], state["b"], self.S, self.tau, inplace=self.inplace,
                      product=self.product)
        if self.inplace:
            # The same operations as below, into buffers that are dead: x - x^{k-1} into
            # x^{k-1}'s, then x + momentum (x - x^{k-1}) into that one again.
            step = x.clone() if x_prev is None else torch.sub(x, x_prev, out=x_prev)
            t_next = (1 + torch.sqrt(1 + 4 * t * t)) / 2
            momentum = ((t - 1) / t_next)[:, None]
            return {**state, "x": x, "z": step.mul_(momentum).add_(x), "t": t_next}
        if x_prev is None:  # first iteration from zero: x^{k-1} = 0
            x_prev = torch.zeros_like(x)
        step = x - x_prev
        if self.restart and state["z"] is not None:
            # Restart the sequence here (t_k = 1): no momentum on this step. Resetting only
            # t_{k+1} would leave the factor (t_k - 1) / 1, a step beyond x^k, not a restart.
            uphill = ((state["z"] - x) * step).sum(dim=1) > 0
            t = torch.where(uphill, torch.ones_like(t), t)
        t_next = (1 + torch.sqrt(1 + 4 * t * t)) / 2
        momentum = ((t - 1) / t_next)[:, None]
        return {**state, "x": x, "z": x + momentum * step, "t": t_next}


class _Salsa:
    def __init__(self, problem: Problem, Y: torch.Tensor, mu: float, output: str = "u",
                 operators=None, inplace: bool = False, low: torch.dtype | None = None):
        W, S, self.tau = salsa_operators(problem, mu) if operators is None else operators
        self.b, self.S, self.product = _operands(Y, W, S, low)
        # In low precision x is the product's reused buffer, valid until the next step: every
        # reader of output "x" (run_iterations) uses or copies it before stepping again.
        self.output = output
        self.inplace = inplace

    def start(self, x0):
        # A warm start u = x0 with d = 0 is a valid ADMM state.
        return {"b": self.b, "x": x0, "u": x0,
                "d": None if x0 is None else torch.zeros_like(x0)}

    def step(self, state):
        x, u, d = salsa_step(state["u"], state["d"], state["b"], self.S, self.tau,
                             inplace=self.inplace, product=self.product)
        return {**state, "x": x, "u": u, "d": d}

    def codes(self, state):
        return state[self.output]


def _select(state: dict, keep: torch.Tensor) -> dict:
    return {k: (v[keep] if isinstance(v, torch.Tensor) else v) for k, v in state.items()}


def _algorithm(problem, Y, method, *, mu=DEFAULT_MU, restart=False, output="u", operators=None,
               inplace=False, low=None):
    if method == "ista":
        return _Ista(problem, Y, operators, inplace=inplace, low=low)
    if method == "fista":
        return _Fista(problem, Y, restart=restart, operators=operators, inplace=inplace,
                      low=low)
    if method == "salsa":
        return _Salsa(problem, Y, mu, output=output, operators=operators, inplace=inplace,
                      low=low)
    raise InputError(f"unknown method {method!r}; choose ista, fista or salsa")


def iterates(problem: Problem | None, Y: torch.Tensor, method: str, n_iter: int, *,
             mu: float = DEFAULT_MU, operators=None, inplace: bool = False,
             low: torch.dtype | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(t, codes)`` after every iteration ``t = 1..n_iter`` of ISTA, FISTA or SALSA
    on the whole batch (no early stop): one pass gives the codes at every T.

    ``operators``: the ``(W, S, tau)`` of :mod:`lsalsa.core.operators`, formed once by the
    caller (then ``problem`` may be None), e.g. to keep their cost out of a timed region.
    ``inplace`` (under ``torch.inference_mode`` only): the iterates are updated in place, as
    the learned encoders do at inference (same operations and rounding, fewer temporaries);
    each yielded tensor is then valid only until the next iteration. ``low`` (bfloat16,
    float16; checked by :func:`~lsalsa.core.operators.inference_dtype`): the products in that
    precision, the iterates in ``Y``'s.
    """
    algo = _algorithm(problem, Y, method, mu=mu, operators=operators, inplace=inplace,
                      low=low)
    state = algo.start(None)
    for it in range(1, n_iter + 1):
        state = algo.step(state)
        yield it, algo.codes(state)


def codes_with_operators(operators, Y: torch.Tensor, method: str, n_iter: int,
                         batch_size: int, low: torch.dtype | None = None) -> torch.Tensor:
    """ISTA, FISTA or SALSA codes after ``n_iter`` iterations with ``(W, S, tau)`` formed once
    by the caller (as a deployed solver holds them: their cost stays out of a timed region),
    batch by batch, in place (as the learned encoders run), through :func:`iterates`' loop;
    ``low``: as there."""
    parts = []
    with torch.inference_mode():
        for first in range(0, Y.shape[0], batch_size):
            *_, (_, codes) = iterates(None, Y[first:first + batch_size], method, n_iter,
                                      operators=operators, inplace=True, low=low)
            parts.append(codes)
    return torch.cat(parts)


def run_iterations(problem: Problem, Y: torch.Tensor, method: str, n_iter: int, *,
                   mu: float = DEFAULT_MU, tol: float | None = None, check_every: int = 10,
                   history: bool = False, x0: torch.Tensor | None = None,
                   restart: bool = False, output: str = "u",
                   low: torch.dtype | None = None) -> SolveResult:
    """The loop behind :func:`lsalsa.solve`, on validated tensors.

    With ``tol``, every ``check_every`` iterations the per-sample relative duality gap
    ``gap / E(x)`` is computed; samples below ``tol`` are finished and dropped from the batch,
    and the loop ends when none is left.
    """
    algo = _algorithm(problem, Y, method, mu=mu, restart=restart, output=output, low=low)

    B = Y.shape[0]
    rows = torch.arange(B, device=Y.device)
    state = algo.start(x0)
    codes = torch.zeros(B, problem.N, dtype=Y.dtype, device=Y.device)
    gaps = torch.full((B,), math.nan, dtype=Y.dtype, device=Y.device) if tol is not None else None
    finished_cost = torch.zeros(B, dtype=Y.dtype, device=Y.device)
    trace = {"objective": [], "time": []} if history else None
    started = time.perf_counter()
    done_iter = 0
    for it in range(1, n_iter + 1):
        state = algo.step(state)
        done_iter = it
        current = algo.codes(state)
        if trace is not None:
            cost = finished_cost.clone()
            cost[rows] = _objective(problem, Y[rows], current)
            trace["objective"].append(float(cost.mean()))
            trace["time"].append(time.perf_counter() - started)
        if tol is not None and (it % check_every == 0 or it == n_iter):
            active = Y[rows]
            gap = _duality_gap(problem, active, current)
            cost = _objective(problem, active, current)
            finished = gap <= tol * cost.clamp_min(torch.finfo(Y.dtype).tiny)
            gaps[rows] = gap
            if bool(finished.any()):
                codes[rows[finished]] = current[finished]
                finished_cost[rows[finished]] = cost[finished]
                keep = ~finished
                rows, state = rows[keep], _select(state, keep)
                if rows.numel() == 0:
                    break
    if rows.numel():
        codes[rows] = algo.codes(state)
    converged = None if gaps is None else bool(
        (gaps <= tol * _objective(problem, Y, codes).clamp_min(torch.finfo(Y.dtype).tiny)).all())
    return SolveResult(codes=codes, n_iter=done_iter, gap=gaps, converged=converged,
                       history=trace, method=method)


def as_history_arrays(trace: dict | None) -> dict | None:
    if trace is None:
        return None
    return {k: np.asarray(v) for k, v in trace.items()}

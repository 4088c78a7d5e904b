"""The math core: objective, duality gap, KKT violation, soft threshold, Lipschitz constant.

Each value is checked against an independent NumPy formula or a closed form, never against
the function itself.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import lsalsa
from _numerics import assert_within, gamma, gap_rounding, kkt_bound, unit_roundoff
from conftest import random_dictionary


def np_objective(Y, X, blocks, alphas):
    """``1/2 ||y - A x||^2 + sum_i alpha_i ||x_i||_1`` per row, straight from DESIGN.md 1."""
    A = np.hstack(blocks)
    edges = np.cumsum([0] + [b.shape[1] for b in blocks])
    l1 = sum(a * np.abs(X[:, lo:hi]).sum(axis=1)
             for a, lo, hi in zip(alphas, edges[:-1], edges[1:], strict=True))
    return 0.5 * ((Y - X @ A.T) ** 2).sum(axis=1) + l1


def np_gap(Y, X, blocks, alphas):
    """The duality gap of docs/DESIGN.md section 1, written out with NumPy."""
    A = np.hstack(blocks)
    edges = np.cumsum([0] + [b.shape[1] for b in blocks])
    gaps = []
    for y, x in zip(Y, X, strict=True):
        r = y - A @ x
        s = 1.0
        for a, lo, hi in zip(alphas, edges[:-1], edges[1:], strict=True):
            peak = np.abs(A[:, lo:hi].T @ r).max()
            if peak > 0:
                s = min(s, a / peak)
        dual = 0.5 * y @ y - 0.5 * np.sum((y - s * r) ** 2)
        gaps.append(np_objective(y[None], x[None], blocks, alphas)[0] - dual)
    return np.array(gaps)


@pytest.fixture
def two_blocks(rng):
    return [random_dictionary(rng, 8, 5), random_dictionary(rng, 8, 7)], [0.3, 0.05]


def test_objective_matches_numpy_formula(rng, two_blocks):
    blocks, alphas = two_blocks
    Y = rng.standard_normal((6, 8))
    X = rng.standard_normal((6, 12)) * (rng.random((6, 12)) < 0.5)
    got = lsalsa.objective(Y, X, blocks, alphas)
    assert isinstance(got, np.ndarray) and got.shape == (6,)
    # Two evaluations in different orders: each within gap_rounding (tests/_numerics.py).
    rounding = gap_rounding(Y, X, blocks, got)
    assert_within(got, np_objective(Y, X, blocks, alphas), 2 * rounding)
    # One dictionary given as a single matrix: one alpha on every coordinate.
    A = np.hstack(blocks)
    assert_within(lsalsa.objective(Y, X, A, 0.2), np_objective(Y, X, [A], [0.2]), 2 * rounding)


def test_objective_torch_in_torch_out(rng, two_blocks, device):
    blocks, alphas = two_blocks
    Y = rng.standard_normal((3, 8))
    X = rng.standard_normal((3, 12))
    got = lsalsa.objective(torch.from_numpy(Y).to(device), torch.from_numpy(X).to(device),
                           [torch.from_numpy(b).to(device) for b in blocks], alphas)
    assert isinstance(got, torch.Tensor) and got.device.type == device.type
    expected = np_objective(Y, X, blocks, alphas)
    assert_within(got, expected, 2 * gap_rounding(Y, X, blocks, expected))


def test_gap_matches_numpy_formula_and_is_nonnegative(rng, two_blocks):
    blocks, alphas = two_blocks
    Y = rng.standard_normal((20, 8))
    # Dense, sparse, tiny and huge codes: the gap is >= 0 for every one of them.
    X = rng.standard_normal((20, 12)) * np.repeat([1e-3, 0.1, 1.0, 30.0], 5)[:, None]
    X[::3, ::2] = 0.0
    gap = lsalsa.duality_gap(Y, X, blocks, alphas)
    # A gap is accurate to eps times the terms it is the difference of, not to eps times
    # itself (gap_rounding); >= 0 holds exactly, so the computed one is >= -rounding.
    rounding = gap_rounding(Y, X, blocks, lsalsa.objective(Y, X, blocks, alphas))
    assert_within(gap, np_gap(Y, X, blocks, alphas), 2 * rounding)
    assert (gap >= -rounding).all()


def test_gap_at_zero_codes_has_closed_form(rng):
    """At x = 0, s = alpha / ||A^T y||_inf and the gap is 1/2 (1 - s)^2 ||y||^2."""
    A = random_dictionary(rng, 10, 15)
    Y = rng.standard_normal((4, 10))
    peak = np.abs(Y @ A).max(axis=1)
    alpha = 0.5 * peak.min()  # below every peak, so x = 0 is not optimal
    s = alpha / peak
    expected = 0.5 * (1 - s) ** 2 * (Y**2).sum(axis=1)
    zero = np.zeros((4, 15))
    gap = lsalsa.duality_gap(Y, zero, A, alpha)
    rounding = gap_rounding(Y, zero, A, 0.5 * (Y**2).sum(axis=1))
    assert_within(gap, expected, 2 * rounding)
    assert (gap > 0).all()


def test_zero_is_optimal_when_alpha_exceeds_correlation(rng):
    A = random_dictionary(rng, 10, 15)
    Y = rng.standard_normal((4, 10))
    alpha = 1.01 * np.abs(Y @ A).max()
    zero = np.zeros((4, 15))
    rounding = gap_rounding(Y, zero, A, 0.5 * (Y**2).sum(axis=1))
    assert_within(lsalsa.duality_gap(Y, zero, A, alpha), 0.0, rounding)
    np.testing.assert_array_equal(lsalsa.kkt_violation(Y, zero, A, alpha), 0.0)


def test_gap_and_kkt_vanish_at_optimum_and_bound_suboptimality(rng, two_blocks):
    blocks, alphas = two_blocks
    Y = rng.standard_normal((5, 8))
    best = lsalsa.solve(Y, blocks, alphas, method="exact", tol=1e-13).codes
    cost = lsalsa.objective(Y, best, blocks, alphas)
    gap = lsalsa.duality_gap(Y, best, blocks, alphas)
    # The solver met 1e-13 with its own computation of the same gap (tests/_numerics.py).
    rounding = gap_rounding(Y, best, blocks, cost)
    assert (gap >= -rounding).all() and (gap <= 1e-13 * cost + 2 * rounding).all()
    assert (lsalsa.kkt_violation(Y, best, blocks, alphas)
            <= kkt_bound(Y, best, blocks, alphas)).all()
    # Weak duality: for any X the gap bounds E(X) - E(x*) >= E(X) - E(best) from above.
    for scale in (1e-4, 1e-2, 1.0):
        X = best + scale * rng.standard_normal(best.shape)
        cost_x = lsalsa.objective(Y, X, blocks, alphas)
        excess = cost_x - cost
        gap_x = lsalsa.duality_gap(Y, X, blocks, alphas)
        assert (excess > 0).all()
        assert (gap_x >= excess - 2 * gap_rounding(Y, X, blocks, cost_x) - rounding).all()
        assert lsalsa.kkt_violation(Y, X, blocks, alphas).min() > 0


def test_kkt_violation_by_hand():
    """A = [1], y = 3, alpha = 1: x* = 2; g = x - 3."""
    A = np.array([[1.0]])
    Y = np.array([[3.0], [3.0], [3.0], [3.0]])
    X = np.array([[2.0], [0.0], [1.0], [-1.0]])
    # x=2: g=-1, g+alpha=0; x=0: |g|-alpha=2; x=1: |-2+1|=1; x=-1: |-4-1|=5.
    # Every intermediate is a small integer or half: exact in binary floating point.
    np.testing.assert_array_equal(lsalsa.kkt_violation(Y, X, A, 1.0), [0.0, 2.0, 1.0, 5.0])
    np.testing.assert_array_equal(lsalsa.duality_gap(Y[:1], X[:1], A, 1.0), 0.0)


@pytest.mark.parametrize("tau", [0.5, "vector"])
def test_soft_threshold_matches_scalar_definition(rng, tau):
    z = np.concatenate([rng.standard_normal(50) * 2, [0.5, -0.5, 0.0, 0.4999, -0.5001]])
    taus = np.full(z.shape, 0.5) if tau == "vector" else 0.5
    if tau == "vector":
        taus[:25] = 1.5  # different thresholds on two "blocks"
    got = lsalsa.soft_threshold(
        torch.from_numpy(z), torch.from_numpy(taus) if tau == "vector" else tau).numpy()
    expected = [np.sign(v) * max(abs(v) - t, 0.0) for v, t in np.broadcast(z, taus)]
    # Exact: outside the dead zone both forms make one correctly rounded subtraction of the
    # same two numbers (z - tau, or -(|z| - tau) = z + tau for z < 0; rounding is symmetric).
    np.testing.assert_array_equal(got, expected)
    dead = np.abs(z) <= taus
    assert dead.sum() > 5
    assert (got[dead] == 0.0).all()  # exact zeros, not tiny values
    assert (got[~dead] != 0.0).all()


def test_soft_threshold_batched_blockwise():
    z = torch.tensor([[1.0, -1.0, 3.0], [0.2, 2.0, -2.5]])
    tau = torch.tensor([0.5, 0.5, 2.0])
    expected = torch.tensor([[0.5, -0.5, 1.0], [0.0, 1.5, -0.5]])
    assert torch.equal(lsalsa.soft_threshold(z, tau), expected)


def test_lipschitz_constant(rng):
    blocks = [random_dictionary(rng, 9, 4), random_dictionary(rng, 9, 11)]
    A = np.hstack(blocks)
    expected = np.linalg.eigvalsh(A.T @ A).max()
    # Backward-stable SVD and symmetric eigensolver: each is within a modest multiple of
    # gamma(n) of the largest eigenvalue, relative to itself (A^T A formed within gamma(M)).
    rel = 4 * gamma(max(A.shape))
    assert lsalsa.lipschitz_constant(A) == pytest.approx(expected, rel=rel)
    assert lsalsa.lipschitz_constant(blocks) == pytest.approx(expected, rel=rel)
    assert lsalsa.lipschitz_constant(torch.from_numpy(A)) == pytest.approx(expected, rel=rel)


finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(X=arrays(np.float64, (3, 6), elements=finite),
       Y=arrays(np.float64, (3, 4), elements=finite),
       alpha=st.floats(0.0, 10.0), seed=st.integers(0, 2**16))
def test_gap_nonnegative_property(X, Y, alpha, seed):
    A = random_dictionary(np.random.default_rng(seed), 4, 6)
    gap = lsalsa.duality_gap(Y, X, A, alpha)
    cost = lsalsa.objective(Y, X, A, alpha)
    # Rounding of the O(cost) terms is the only way below zero (gap_rounding).
    assert (gap >= -gap_rounding(Y, X, A, cost)).all()


@settings(max_examples=200, deadline=None)
@given(z=finite, tau=st.floats(0.0, 100.0), x=finite)
def test_soft_threshold_is_the_l1_prox(z, tau, x):
    """soft(z; tau) minimises h(x) = 1/2 (x - z)^2 + tau |x|."""
    prox = float(lsalsa.soft_threshold(torch.tensor([z], dtype=torch.float64), tau)[0])

    def h(v):
        return 0.5 * (v - z) ** 2 + tau * abs(v)

    def slack(other):
        # Each h (non-negative terms, three roundings) is within 4u of itself; the computed
        # prox is within u|prox| of the exact one, where h is flat to first order.
        u = unit_roundoff(np.float64)
        return 4 * u * (h(prox) + h(other)) + 0.5 * (u * prox) ** 2

    assert h(prox) <= h(x) + slack(x)
    for other in (prox + 1e-6, prox - 1e-6):
        assert h(prox) <= h(other) + slack(other)

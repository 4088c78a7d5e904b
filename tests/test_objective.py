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
from conftest import random_dictionary


def np_objective(Y, X, blocks, alphas):
    """``1/2 ||y - A x||^2 + sum_i alpha_i ||x_i||_1`` per row, straight from DESIGN.md 1."""
    A = np.hstack(blocks)
    edges = np.cumsum([0] + [b.shape[1] for b in blocks])
    l1 = sum(a * np.abs(X[:, lo:hi]).sum(axis=1)
             for a, lo, hi in zip(alphas, edges[:-1], edges[1:], strict=True))
    return 0.5 * ((Y - X @ A.T) ** 2).sum(axis=1) + l1


def np_gap(Y, X, blocks, alphas):
    """The duality gap of DESIGN.md section 1, written out with NumPy."""
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
    np.testing.assert_allclose(got, np_objective(Y, X, blocks, alphas), rtol=1e-12)
    # One dictionary given as a single matrix: one alpha on every coordinate.
    A = np.hstack(blocks)
    np.testing.assert_allclose(lsalsa.objective(Y, X, A, 0.2),
                               np_objective(Y, X, [A], [0.2]), rtol=1e-12)


def test_objective_torch_in_torch_out(rng, two_blocks, device):
    blocks, alphas = two_blocks
    Y = rng.standard_normal((3, 8))
    X = rng.standard_normal((3, 12))
    got = lsalsa.objective(torch.from_numpy(Y).to(device), torch.from_numpy(X).to(device),
                           [torch.from_numpy(b).to(device) for b in blocks], alphas)
    assert isinstance(got, torch.Tensor) and got.device.type == device.type
    np.testing.assert_allclose(got.cpu().numpy(), np_objective(Y, X, blocks, alphas),
                               rtol=1e-12)


def test_gap_matches_numpy_formula_and_is_nonnegative(rng, two_blocks):
    blocks, alphas = two_blocks
    Y = rng.standard_normal((20, 8))
    # Dense, sparse, tiny and huge codes: the gap is >= 0 for every one of them.
    X = rng.standard_normal((20, 12)) * np.repeat([1e-3, 0.1, 1.0, 30.0], 5)[:, None]
    X[::3, ::2] = 0.0
    gap = lsalsa.duality_gap(Y, X, blocks, alphas)
    np.testing.assert_allclose(gap, np_gap(Y, X, blocks, alphas), rtol=1e-10, atol=1e-12)
    assert (gap >= 0).all()


def test_gap_at_zero_codes_has_closed_form(rng):
    """At x = 0, s = alpha / ||A^T y||_inf and the gap is 1/2 (1 - s)^2 ||y||^2."""
    A = random_dictionary(rng, 10, 15)
    Y = rng.standard_normal((4, 10))
    peak = np.abs(Y @ A).max(axis=1)
    alpha = 0.5 * peak.min()  # below every peak, so x = 0 is not optimal
    s = alpha / peak
    expected = 0.5 * (1 - s) ** 2 * (Y**2).sum(axis=1)
    gap = lsalsa.duality_gap(Y, np.zeros((4, 15)), A, alpha)
    np.testing.assert_allclose(gap, expected, rtol=1e-12)
    assert (gap > 0).all()


def test_zero_is_optimal_when_alpha_exceeds_correlation(rng):
    A = random_dictionary(rng, 10, 15)
    Y = rng.standard_normal((4, 10))
    alpha = 1.01 * np.abs(Y @ A).max()
    zero = np.zeros((4, 15))
    np.testing.assert_allclose(lsalsa.duality_gap(Y, zero, A, alpha), 0.0, atol=1e-12)
    np.testing.assert_array_equal(lsalsa.kkt_violation(Y, zero, A, alpha), 0.0)


def test_gap_and_kkt_vanish_at_optimum_and_bound_suboptimality(rng, two_blocks):
    blocks, alphas = two_blocks
    Y = rng.standard_normal((5, 8))
    best = lsalsa.solve(Y, blocks, alphas, method="exact", tol=1e-13).codes
    cost = lsalsa.objective(Y, best, blocks, alphas)
    gap = lsalsa.duality_gap(Y, best, blocks, alphas)
    assert (gap >= -1e-12).all() and (gap <= 1e-11 * cost).all()
    assert lsalsa.kkt_violation(Y, best, blocks, alphas).max() < 1e-6
    # Weak duality: for any X the gap bounds E(X) - E(x*) from above.
    for scale in (1e-4, 1e-2, 1.0):
        X = best + scale * rng.standard_normal(best.shape)
        excess = lsalsa.objective(Y, X, blocks, alphas) - cost
        gap_x = lsalsa.duality_gap(Y, X, blocks, alphas)
        assert (excess > 0).all()
        assert (gap_x >= excess - 1e-12).all()
        assert lsalsa.kkt_violation(Y, X, blocks, alphas).min() > 0


def test_kkt_violation_by_hand():
    """A = [1], y = 3, alpha = 1: x* = 2; g = x - 3."""
    A = np.array([[1.0]])
    Y = np.array([[3.0], [3.0], [3.0], [3.0]])
    X = np.array([[2.0], [0.0], [1.0], [-1.0]])
    # x=2: g=-1, g+alpha=0; x=0: |g|-alpha=2; x=1: |-2+1|=1; x=-1: |-4-1|=5.
    np.testing.assert_allclose(lsalsa.kkt_violation(Y, X, A, 1.0), [0.0, 2.0, 1.0, 5.0])
    np.testing.assert_allclose(lsalsa.duality_gap(Y[:1], X[:1], A, 1.0), 0.0, atol=1e-15)


@pytest.mark.parametrize("tau", [0.5, "vector"])
def test_soft_threshold_matches_scalar_definition(rng, tau):
    z = np.concatenate([rng.standard_normal(50) * 2, [0.5, -0.5, 0.0, 0.4999, -0.5001]])
    taus = np.full(z.shape, 0.5) if tau == "vector" else 0.5
    if tau == "vector":
        taus[:25] = 1.5  # different thresholds on two "blocks"
    got = lsalsa.soft_threshold(
        torch.from_numpy(z), torch.from_numpy(taus) if tau == "vector" else tau).numpy()
    expected = [np.sign(v) * max(abs(v) - t, 0.0) for v, t in np.broadcast(z, taus)]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-15)
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
    assert lsalsa.lipschitz_constant(A) == pytest.approx(expected, rel=1e-12)
    assert lsalsa.lipschitz_constant(blocks) == pytest.approx(expected, rel=1e-12)
    assert lsalsa.lipschitz_constant(torch.from_numpy(A)) == pytest.approx(expected, rel=1e-12)


finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(X=arrays(np.float64, (3, 6), elements=finite),
       Y=arrays(np.float64, (3, 4), elements=finite),
       alpha=st.floats(0.0, 10.0), seed=st.integers(0, 2**16))
def test_gap_nonnegative_property(X, Y, alpha, seed):
    A = random_dictionary(np.random.default_rng(seed), 4, 6)
    gap = lsalsa.duality_gap(Y, X, A, alpha)
    cost = lsalsa.objective(Y, X, A, alpha)
    # Rounding of the two O(cost) terms is the only way below zero.
    assert (gap >= -1e-12 * (1 + cost)).all()


@settings(max_examples=200, deadline=None)
@given(z=finite, tau=st.floats(0.0, 100.0), x=finite)
def test_soft_threshold_is_the_l1_prox(z, tau, x):
    """soft(z; tau) minimises h(x) = 1/2 (x - z)^2 + tau |x|."""
    prox = float(lsalsa.soft_threshold(torch.tensor([z], dtype=torch.float64), tau)[0])

    def h(v):
        return 0.5 * (v - z) ** 2 + tau * abs(v)

    assert h(prox) <= h(x) + 1e-9 * (1 + abs(h(x)))
    assert h(prox) <= min(h(prox + 1e-6), h(prox - 1e-6)) + 1e-12 * (1 + h(prox))

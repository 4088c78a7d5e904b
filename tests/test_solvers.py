"""ISTA, FISTA, SALSA and the exact solver against independent references.

References: scikit-learn's ``Lasso`` (coordinate descent; its cost is
``1/(2 M) ||y - A w||^2 + a ||w||_1``, so ``a = alpha / M``) and SPAMS's LARS-Lasso when
installed. For D = 2 both get one penalty by rescaling columns: with ``lam = max(alpha_i)``
and ``x_i = (lam / alpha_i) z_i``, every block of ``z`` carries the penalty ``lam``. Short runs
are checked against a NumPy transcription of docs/DESIGN.md section 2.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import Lasso

import lsalsa
from _numerics import (
    code_error_bound,
    gap_rounding,
    iteration_error,
    kkt_bound,
    salsa_condition,
)
from conftest import low_precisions, random_dictionary
from lsalsa.core.problem import make_problem
from lsalsa.core.solvers.classic import _Fista

M, N, SPLIT = 10, 20, 8  # D = 2 splits the 20 atoms into 8 + 12
ALPHAS = {1: [0.2], 2: [0.3, 0.1]}
SKLEARN_TOL = 1e-14  # scikit-learn stops once its duality gap is <= tol * ||y||^2


def make_dictionary(kind: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-norm (M, N) dictionaries: generic, near-duplicate atoms, or singular values 1..3e-3."""
    if kind == "random":
        return random_dictionary(rng, M, N)
    if kind == "duplicates":  # pairs of atoms at ~0.05 of each other (coherence ~0.999)
        base = rng.standard_normal((M, N // 2))
        A = np.repeat(base, 2, axis=1) + 0.05 * rng.standard_normal((M, N))
    else:  # "decaying": condition number ~300 before normalisation (~180 after)
        U, _ = np.linalg.qr(rng.standard_normal((M, M)))
        V, _ = np.linalg.qr(rng.standard_normal((N, M)))
        A = U @ np.diag(np.logspace(0, -2.5, M)) @ V.T
    return A / np.linalg.norm(A, axis=0)


def as_blocks(A: np.ndarray, D: int) -> list[np.ndarray]:
    return [A] if D == 1 else [A[:, :SPLIT], A[:, SPLIT:]]


def column_scales(blocks, alphas) -> tuple[float, np.ndarray]:
    lam = max(alphas)
    return lam, np.concatenate([np.full(b.shape[1], lam / a)
                                for b, a in zip(blocks, alphas, strict=True)])


def sklearn_codes(Y, blocks, alphas) -> np.ndarray:
    lam, scales = column_scales(blocks, alphas)
    B = np.hstack(blocks) * scales
    lasso = Lasso(alpha=lam / B.shape[0], fit_intercept=False, tol=SKLEARN_TOL,
                  max_iter=10**6)
    return np.stack([lasso.fit(B, y).coef_ for y in Y]) * scales


def spams_codes(Y, blocks, alphas) -> np.ndarray:
    spams = pytest.importorskip("spams")
    lam, scales = column_scales(blocks, alphas)
    B = np.asfortranarray(np.hstack(blocks) * scales)
    z = spams.lasso(np.asfortranarray(Y.T), D=B, lambda1=lam, mode=2, numThreads=1)
    return np.asarray(z.todense()).T * scales


@pytest.fixture(params=["random", "duplicates", "decaying"])
def case(request):
    rng = np.random.default_rng(3)
    A = make_dictionary(request.param, rng)
    Y = rng.standard_normal((4, M))
    return request.param, A, Y


def check_optimal(Y, X, blocks, alphas, reference, tol):
    """X is a minimiser to the relative duality gap ``tol``, and everything that implies holds.

    The bounds are derived in tests/_numerics.py: the gap is recomputed within rounding
    (``gap_rounding``, relative to E + ||y||^2 / 2, not to the gap); by weak duality the cost
    exceeds the reference's by at most the gap; the gap bounds the distance to the reference
    (``code_error_bound``: restricted strong convexity on the optimum's support, since E is
    not strongly convex for N > M) and, with the optimum's signs, the KKT violation
    (``kkt_bound``).
    """
    cost = lsalsa.objective(Y, X, blocks, alphas)
    best = lsalsa.objective(Y, reference, blocks, alphas)
    rounding = gap_rounding(Y, X, blocks, cost)
    gap = lsalsa.duality_gap(Y, X, blocks, alphas)
    assert np.all(gap >= -rounding) and np.all(gap <= tol * cost + rounding)
    assert np.all(cost - best <= tol * cost + 2 * rounding + gap_rounding(Y, reference, blocks,
                                                                          best))
    distance = np.linalg.norm(X - reference, axis=1)
    assert np.all(distance <= code_error_bound(Y, X, reference, blocks, alphas))
    assert np.all((X == 0) | (np.sign(X) == np.sign(reference)))  # no spurious atom
    assert np.all(lsalsa.kkt_violation(Y, X, blocks, alphas) <= kkt_bound(Y, X, blocks, alphas))


@pytest.mark.parametrize("D", [1, 2])
@pytest.mark.parametrize("method", ["ista", "fista", "salsa"])
def test_converged_solver_matches_sklearn(case, method, D):
    _, A, Y = case
    blocks, alphas = as_blocks(A, D), ALPHAS[D]
    reference = sklearn_codes(Y, blocks, alphas)
    # The reference is itself optimal: a sanity check on the alpha scaling. scikit-learn's
    # gap uses the same dual point as ours, so ours is within its stopping bound plus the
    # rounding of both computations.
    cost = lsalsa.objective(Y, reference, blocks, alphas)
    assert np.all(lsalsa.duality_gap(Y, reference, blocks, alphas)
                  <= SKLEARN_TOL * (Y**2).sum(axis=1) + 2 * gap_rounding(Y, reference, blocks,
                                                                        cost))
    result = lsalsa.solve(Y, blocks, alphas, method=method, n_iter=100_000, tol=1e-8, mu=1.0,
                          check_every=20)
    assert result.converged and result.n_iter < 100_000
    check_optimal(Y, result.codes, blocks, alphas, reference, tol=1e-8)


@pytest.mark.parametrize("D", [1, 2])
def test_exact_backends_match_sklearn_and_spams(case, D):
    _, A, Y = case
    blocks, alphas = as_blocks(A, D), ALPHAS[D]
    reference = sklearn_codes(Y, blocks, alphas)
    own = lsalsa.solve(Y, blocks, alphas, method="exact", backend="own", tol=1e-10)
    assert own.converged
    check_optimal(Y, own.codes, blocks, alphas, reference, tol=1e-10)
    # LARS is exact up to rounding in its path updates: ~1e-10 relative gap here.
    check_optimal(Y, spams_codes(Y, blocks, alphas), blocks, alphas, reference, tol=1e-8)
    via_spams = lsalsa.solve(Y, blocks, alphas, method="exact", backend="spams", tol=1e-10)
    assert via_spams.converged and via_spams.method.startswith("exact (spams")
    check_optimal(Y, via_spams.codes, blocks, alphas, reference, tol=1e-10)


def test_exact_default_bound_and_warning(rng):
    A = make_dictionary("random", rng)
    Y = rng.standard_normal((3, M))
    result = lsalsa.solve(Y, A, 0.05, method="exact", backend="own")
    cost = lsalsa.objective(Y, result.codes, A, 0.05)
    # The solver's own gap met the bound; this cost is recomputed (same value up to rounding).
    assert result.converged and np.all(
        result.gap <= 1e-7 * cost + 1e-7 * 2 * gap_rounding(Y, result.codes, A, cost))
    with pytest.warns(RuntimeWarning, match="did not reach"):
        short = lsalsa.solve(Y, A, 0.05, method="exact", backend="own", n_iter=2)
    assert short.converged is False


def test_fista_and_salsa_reach_the_same_minimiser(rng):
    blocks = as_blocks(make_dictionary("random", rng), 2)
    Y = rng.standard_normal((5, M))
    fista = lsalsa.solve(Y, blocks, [0.25, 0.15], method="fista", n_iter=50_000, tol=1e-10)
    assert fista.converged
    for mu in (0.3, 3.0):  # SALSA's fixed point does not depend on mu
        salsa = lsalsa.solve(Y, blocks, [0.25, 0.15], method="salsa", n_iter=50_000, tol=1e-10,
                             mu=mu)
        assert salsa.converged
        # Both are within what their gaps allow of the one minimiser (tests/_numerics.py).
        distance = np.linalg.norm(salsa.codes - fista.codes, axis=1)
        assert np.all(distance <= code_error_bound(Y, salsa.codes, fista.codes, blocks,
                                                   [0.25, 0.15]))


def test_salsa_u_is_exactly_sparse_and_x_is_not(rng):
    A = make_dictionary("random", rng)
    Y = rng.standard_normal((4, M))
    reference = sklearn_codes(Y, [A], [0.3])
    u = lsalsa.solve(Y, A, 0.3, method="salsa", n_iter=20_000, tol=1e-10, mu=1.0).codes
    x = lsalsa.solve(Y, A, 0.3, method="salsa", n_iter=20_000, tol=1e-10, mu=1.0,
                     output="x").codes
    assert (reference == 0).sum() > 20
    np.testing.assert_array_equal(u == 0, reference == 0)  # same support, exact zeros
    assert (x == 0).sum() == 0  # the splitting iterate only approaches zero
    # With output="x" the gap test ran on x itself, so both iterates are near-minimisers:
    # each is as close to the optimum as its gap allows (off-support mass included for x).
    for codes in (u, x):
        distance = np.linalg.norm(codes - reference, axis=1)
        assert np.all(distance <= code_error_bound(Y, codes, reference, A, 0.3))


def test_ista_objective_never_increases(rng):
    blocks = as_blocks(make_dictionary("decaying", rng), 2)
    Y = rng.standard_normal((6, M))
    result = lsalsa.solve(Y, blocks, [0.1, 0.02], method="ista", n_iter=400, history=True)
    cost = result.history["objective"]
    assert cost.shape == (400,) and result.history["time"].shape == (400,)
    # Each sample's cost is monotone in exact arithmetic (step 1/L); the recorded batch mean
    # of computed costs may rise by the rounding of the two costs compared.
    from lsalsa.core.solvers.classic import iterates

    problem, _ = lsalsa.make_problem([torch.from_numpy(b) for b in blocks], [0.1, 0.02])
    rounding = np.array([
        gap_rounding(Y, codes, blocks, lsalsa.objective(Y, codes.numpy(), blocks, [0.1, 0.02]))
        .mean() for _, codes in iterates(problem, torch.from_numpy(Y), "ista", 400)])
    assert np.all(np.diff(cost) <= rounding[:-1] + rounding[1:])
    assert cost[-1] < 0.9 * cost[0]  # it did move
    final = lsalsa.objective(Y, result.codes, blocks, [0.1, 0.02])
    assert abs(cost[-1] - final.mean()) <= 2 * rounding[-1]
    assert np.all(np.diff(result.history["time"]) >= 0)
    assert lsalsa.solve(Y, blocks, [0.1, 0.02], method="ista", n_iter=5).history is None


def np_soft(z, tau):
    return np.sign(z) * np.maximum(np.abs(z) - tau, 0.0)


def np_reference_iterations(method, Y, A, tau_alpha, T, mu):
    """docs/DESIGN.md section 2 transcribed, with per-coordinate penalties ``tau_alpha`` (N,)."""
    L = np.linalg.eigvalsh(A.T @ A).max()
    X = np.zeros((Y.shape[0], A.shape[1]))
    if method == "ista":
        for _ in range(T):
            X = np_soft(X - (X @ A.T - Y) @ A / L, tau_alpha / L)
        return X
    if method == "fista":
        Z, t = X.copy(), 1.0
        for _ in range(T):
            X_new = np_soft(Z - (Z @ A.T - Y) @ A / L, tau_alpha / L)
            t_new = (1 + np.sqrt(1 + 4 * t * t)) / 2
            Z = X_new + (t - 1) / t_new * (X_new - X)
            X, t = X_new, t_new
        return X
    S = np.linalg.inv(mu * np.eye(A.shape[1]) + A.T @ A)
    U, Dual = X.copy(), X.copy()
    for _ in range(T):
        X = (Y @ A + mu * (U - Dual)) @ S
        U = np_soft(X + Dual, tau_alpha / mu)
        Dual = Dual + X - U
    return U


@pytest.mark.parametrize("method", ["ista", "fista", "salsa"])
@pytest.mark.parametrize("T", [1, 2, 7])
def test_iterations_follow_design_definition(rng, method, T):
    blocks = [random_dictionary(rng, 8, 6), random_dictionary(rng, 8, 10)]  # M < N: Woodbury
    A = np.hstack(blocks)
    Y = rng.standard_normal((5, 8))
    tau_alpha = np.repeat([0.3, 0.05], [6, 10])
    got = lsalsa.solve(Y, blocks, [0.3, 0.05], method=method, n_iter=T, mu=2.5).codes
    expected = np_reference_iterations(method, Y, A, tau_alpha, T, mu=2.5)
    # Two float64 evaluations in different orders, with operators formed differently (SALSA:
    # Woodbury here, a plain inverse there; ISTA: another L), each within iteration_error.
    cond = salsa_condition(blocks, 2.5) if method == "salsa" else 1.0
    bound = iteration_error(method, Y, blocks, [0.3, 0.05], T, mu=2.5, operator_cond=cond)
    assert np.all(np.abs(got - expected) <= 2 * bound)


def test_one_ista_iteration_is_thresholded_correlation(rng):
    """T = 1 means soft(A^T y / L; alpha / L) (docs/DESIGN.md section 2)."""
    A = random_dictionary(rng, 10, 20)
    Y = rng.standard_normal((3, 10))
    L = np.linalg.norm(A, 2) ** 2
    expected = np_soft(Y @ A / L, 0.1 / L)
    got = lsalsa.solve(Y, A, 0.1, method="ista", n_iter=1).codes
    # (Y A) / L here, Y (A^T / L) there: one iteration's rounding each (iteration_error).
    assert np.all(np.abs(got - expected) <= 2 * iteration_error("ista", Y, A, 0.1, 1,
                                                                 operator_cond=1.0))
    assert 0 < (got != 0).sum() < got.size


def test_tol_stops_early_per_sample(rng):
    A = make_dictionary("random", rng)
    Y = rng.standard_normal((6, M))
    Y[0] *= 1e-3  # an easy sample: it finishes long before the others
    result = lsalsa.solve(Y, A, 0.2, method="fista", n_iter=100_000, tol=1e-8, check_every=5)
    cost = lsalsa.objective(Y, result.codes, A, 0.2)
    gap = lsalsa.duality_gap(Y, result.codes, A, 0.2)
    assert result.converged and result.n_iter < 100_000 and result.n_iter % 5 == 0
    # The solver's gap was computed on a shrinking sub-batch, this one on the whole batch:
    # equal up to the rounding of a gap, which is relative to E + ||y||^2 / 2, not to the
    # gap (here ~1e-8 E: a difference of O(E) terms).
    rounding = gap_rounding(Y, result.codes, A, cost)
    assert np.all(np.abs(result.gap - gap) <= 2 * rounding)
    assert np.all(gap <= 1e-8 * cost + 2 * rounding)
    short = lsalsa.solve(Y, A, 0.2, method="fista", n_iter=3, tol=1e-8)
    assert short.n_iter == 3 and short.converged is False


def test_restart_drops_momentum():
    """When FISTA's momentum points uphill, a restart steps from x^k itself (t back to 1)."""
    problem, _ = make_problem(np.eye(2), 0.0)
    Y = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    algo = _Fista(problem, Y, restart=True)  # L = 1: x = soft(z - (z - y)) = y at once
    x_prev = torch.tensor([[2.0, 0.0]], dtype=torch.float64)
    z = torch.tensor([[3.0, 0.0]], dtype=torch.float64)  # (z - x).(x - x_prev) = 2 * -1 < 0
    state = {"b": algo.b, "x": x_prev, "z": z, "t": torch.tensor([5.0], dtype=torch.float64)}
    kept = algo.step(state)
    assert kept["z"][0, 0] < 1.0  # downhill momentum is kept: z = x + (t-1)/t' (x - x_prev)
    state = {"b": algo.b, "x": torch.tensor([[0.0, 0.0]], dtype=torch.float64), "z": z,
             "t": torch.tensor([5.0], dtype=torch.float64)}  # (z - x).(x - x_prev) = 2 > 0
    restarted = algo.step(state)
    assert torch.equal(restarted["z"], restarted["x"])
    assert float(restarted["t"][0]) == pytest.approx((1 + 5**0.5) / 2)


@pytest.mark.parametrize("method", ["ista", "fista", "salsa", "exact"])
def test_float32_agrees_with_float64_and_kind_follows_input(rng, device, method):
    blocks = as_blocks(make_dictionary("random", rng), 2)
    Y = rng.standard_normal((8, M))
    # 20 iterations: FISTA's rounding bound grows like T^2 (tests/_numerics.py). Exact codes
    # to a relative gap of 1e-13: on the optimum's support E is quadratic, so codes off by
    # float32 rounding have a gap of that rounding squared, and the gap-based code bound is
    # then as fine as float32 itself.
    kwargs = {"n_iter": 20, "mu": 2.0} if method != "exact" else {"backend": "own",
                                                                  "tol": 1e-13}
    ref = lsalsa.solve(Y, blocks, [0.3, 0.1], method=method, **kwargs).codes
    assert isinstance(ref, np.ndarray) and ref.dtype == np.float64

    def tensor(a, dtype):
        return torch.from_numpy(a).to(device=device, dtype=dtype)

    for dtype in (torch.float32, torch.float64):
        got = lsalsa.solve(tensor(Y, dtype), [tensor(b, dtype) for b in blocks], [0.3, 0.1],
                           method=method, **kwargs).codes
        assert isinstance(got, torch.Tensor)
        assert got.dtype == dtype and got.device.type == device.type
        got = got.cpu().double().numpy()
        if method == "exact":
            # Solved in float64 from inputs rounded to `dtype`, then rounded to it: as close
            # to the float64 problem's minimiser as its gap in that problem allows.
            bound = code_error_bound(Y, got, ref, blocks, [0.3, 0.1])
            assert np.all(np.linalg.norm(got - ref, axis=1) <= bound)
            continue
        # T iterations in `dtype` (operators formed from rounded data: SALSA amplifies that
        # by the condition of mu I + A^T A) against T in float64 (tests/_numerics.py).
        cond = salsa_condition(blocks, 2.0) if method == "salsa" else 1.0
        bound = (iteration_error(method, Y, blocks, [0.3, 0.1], 20, mu=2.0, dtype=dtype,
                                 operator_cond=cond)
                 + iteration_error(method, Y, blocks, [0.3, 0.1], 20, mu=2.0))
        assert np.all(np.abs(got - ref) <= bound)
    np32 = lsalsa.solve(Y.astype(np.float32), [b.astype(np.float32) for b in blocks],
                        [0.3, 0.1], method=method, **kwargs).codes
    assert isinstance(np32, np.ndarray) and np32.dtype == np.float32


@pytest.mark.parametrize("method", ["ista", "fista", "salsa"])
def test_iterates_yields_what_solve_returns_at_every_t(method, rng):
    from lsalsa.core.operators import ista_operators, salsa_operators
    from lsalsa.core.solvers.classic import codes_with_operators, iterates, run_iterations

    problem, _ = lsalsa.make_problem(
        [torch.from_numpy(random_dictionary(rng, M, SPLIT)),
         torch.from_numpy(random_dictionary(rng, M, N - SPLIT))], ALPHAS[2])
    Y = torch.from_numpy(rng.standard_normal((5, M)))
    seen = list(iterates(problem, Y, method, 6, mu=2.0))
    assert [t for t, _ in seen] == [1, 2, 3, 4, 5, 6]
    for t, codes in seen:
        expected = run_iterations(problem, Y, method, t, mu=2.0).codes
        assert torch.equal(codes, expected)
    operators = salsa_operators(problem, 2.0) if method == "salsa" else ista_operators(problem)
    *_, (_, last) = iterates(None, Y, method, 6, mu=2.0, operators=operators)
    assert torch.equal(last, seen[-1][1])
    # In place (the timed path, as the learned encoders run): the same operations on the same
    # batch, so the same bits; the iterates of every step, not just the last.
    with torch.inference_mode():
        for (t, codes), (_, reference) in zip(iterates(None, Y, method, 6, mu=2.0,
                                                       operators=operators, inplace=True),
                                              seen, strict=True):
            assert torch.equal(codes, reference), t
    assert torch.equal(codes_with_operators(operators, Y, method, 6, batch_size=len(Y)),
                       seen[-1][1])


# -- low precision (solve(dtype=...)) ---------------------------------------------------------
@pytest.mark.parametrize("method", ["ista", "fista", "salsa"])
def test_low_precision_solve_agrees_with_float32_within_rounding(rng, device, method):
    """Every product in bfloat16 (float16 too on CUDA): the codes stay float32 and within
    the rounding bound of the low products (tests/_numerics.py) plus the float32 run's own."""
    blocks = as_blocks(make_dictionary("random", rng), 2)
    Y = rng.standard_normal((16, M))
    alphas, T = [0.3, 0.1], 4
    cond = salsa_condition(blocks, 2.0) if method == "salsa" else 1.0

    def solve(dtype=None):
        return lsalsa.solve(torch.from_numpy(Y).float().to(device),
                            [torch.from_numpy(b).float().to(device) for b in blocks], alphas,
                            method=method, n_iter=T, mu=2.0, dtype=dtype).codes

    reference = solve()
    size = np.linalg.norm(reference.cpu().double().numpy(), axis=1, keepdims=True)
    for low in low_precisions(device):
        codes = solve(low)
        assert codes.dtype == torch.float32 and bool(torch.isfinite(codes).all())
        bound = (iteration_error(method, Y, blocks, alphas, T, mu=2.0, low_precision=low,
                                 dtype=torch.float32, operator_cond=cond)
                 + iteration_error(method, Y, blocks, alphas, T, mu=2.0, dtype=torch.float32,
                                   operator_cond=cond))
        difference = (codes - reference).abs().cpu().double().numpy()
        assert np.all(difference <= bound), (difference / bound).max()
        assert difference.max() > 0  # the low products did run
        # Worst case (no cancellation, every step's largest magnitude), yet not vacuous: below
        # the codes' own size. That the loop is the same one, layer for layer, the next test
        # shows bit for bit.
        assert np.median(bound / np.maximum(size, 1e-12)) < 1, np.median(bound / size)


@pytest.mark.parametrize("method", ["ista", "salsa"])
def test_low_precision_solve_is_the_untrained_encoders_low_precision_path(rng, method):
    """SALSA(T) in bfloat16 is an untrained LSALSA(T)'s bfloat16 encode, bit for bit (ISTA:
    LISTA's): one set of low-precision steps, the same operands, the same rounding."""
    blocks = [random_dictionary(rng, M, SPLIT).astype(np.float32),
              random_dictionary(rng, M, N - SPLIT).astype(np.float32)]
    Y = rng.standard_normal((12, M)).astype(np.float32)
    solved = lsalsa.solve(Y, blocks, ALPHAS[2], method=method, n_iter=5, mu=2.0,
                          dtype="bfloat16").codes
    encoder = (lsalsa.LSALSA(blocks, ALPHAS[2], 5, mu=2.0) if method == "salsa"
               else lsalsa.LISTA(blocks, ALPHAS[2], 5))
    assert np.array_equal(solved, encoder.encode(Y, dtype="bfloat16"))
    from lsalsa.core.operators import ista_operators, salsa_operators
    from lsalsa.core.solvers.classic import codes_with_operators

    problem = make_problem(blocks, ALPHAS[2])[0]
    operators = salsa_operators(problem, 2.0) if method == "salsa" else ista_operators(problem)
    timed = codes_with_operators(operators, torch.from_numpy(Y), method, 5, batch_size=5,
                                 low=torch.bfloat16)
    assert np.array_equal(timed.numpy(), solved)


@pytest.mark.parametrize("bad, message", [
    ({"method": "exact", "dtype": "bfloat16"}, "exact codes are solved in the signals'"),
    ({"dtype": "float16"}, "float16 needs a CUDA device"),
    ({"dtype": "int8"}, "bfloat16 or float16"),
])
def test_low_precision_solve_refusals(rng, bad, message):
    A = random_dictionary(rng, M, N)
    with pytest.raises(lsalsa.InputError, match=message):
        lsalsa.solve(rng.standard_normal((3, M)), A, 0.1, **bad)

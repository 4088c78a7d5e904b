"""Every bad input to the public entry points raises InputError with one clear line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lsalsa
from conftest import random_dictionary
from lsalsa import InputError
from lsalsa.core._arrays import check_same_kind

M, N = 6, 9


@pytest.fixture
def good(rng):
    return rng.standard_normal((4, M)), random_dictionary(rng, M, N)


def raises(pattern: str, call):
    with pytest.raises(InputError, match=pattern) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and len(message) < 200
    return message


def test_good_input_passes(good):
    Y, A = good  # the baseline every case below breaks in exactly one way
    assert lsalsa.solve(Y, A, 0.1, n_iter=3).codes.shape == (4, N)


@pytest.mark.parametrize("method", ["ista", "salsa", "exact"])
def test_shapes_that_do_not_match(good, method):
    Y, A = good
    raises(r"Y has 5 features .* M = 6", lambda: lsalsa.solve(Y[:, :5], A, 0.1, method=method))
    raises(r"same number of rows M, got \[5, 6\]",
           lambda: lsalsa.solve(Y, [A, A[:5]], [0.1, 0.2], method=method))
    raises(r"Y must be 2-D", lambda: lsalsa.solve(Y[0], A, 0.1, method=method))
    raises(r"dictionary must be a non-empty 2-D", lambda: lsalsa.solve(Y, A[None], 0.1))
    raises(r"non-empty 2-D .* got shape \(6, 0\)", lambda: lsalsa.solve(Y, A[:, :0], 0.1))
    raises(r"dictionaries must be .* non-empty list", lambda: lsalsa.solve(Y, [], 0.1))
    raises(r"dictionaries must be", lambda: lsalsa.solve(Y, {"A": A}, 0.1))


def test_empty_batch(good):
    Y, A = good
    raises(r"Y is an empty batch", lambda: lsalsa.solve(Y[:0], A, 0.1))
    raises(r"Y is an empty batch", lambda: lsalsa.objective(Y[:0], np.zeros((0, N)), A, 0.1))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_anywhere(good, bad):
    Y, A = good
    Y_bad, A_bad = Y.copy(), A.copy()
    Y_bad[2, 3] = bad
    A_bad[1, 4] = bad
    raises(r"Y contains NaN or Inf", lambda: lsalsa.solve(Y_bad, A, 0.1))
    raises(r"dictionary contains NaN or Inf", lambda: lsalsa.solve(Y, A_bad, 0.1))
    raises(r"dictionaries\[1\] contains NaN or Inf",
           lambda: lsalsa.solve(Y, [A, A_bad], [0.1, 0.1]))
    X = np.zeros((4, N))
    X[0, 0] = bad
    for function in (lsalsa.objective, lsalsa.duality_gap, lsalsa.kkt_violation):
        raises(r"X contains NaN or Inf", lambda f=function: f(Y, X, A, 0.1))
    raises(r"alpha must be finite", lambda: lsalsa.solve(Y, A, bad))


def test_alphas(good):
    Y, A = good
    raises(r"alpha must be >= 0, got -0.1", lambda: lsalsa.solve(Y, A, -0.1))
    raises(r"alpha must be >= 0", lambda: lsalsa.solve(Y, [A, A], [0.1, -1.0]))
    raises(r"got 3 alphas for 2 dictionaries",
           lambda: lsalsa.solve(Y, [A, A], [0.1, 0.2, 0.3]))
    raises(r"got 2 alphas for 1 dictionaries", lambda: lsalsa.solve(Y, A, [0.1, 0.2]))
    raises(r"alphas must be a number", lambda: lsalsa.solve(Y, A, "big"))
    raises(r"got 2 alphas", lambda: lsalsa.objective(Y, np.zeros((4, N)), A, [1.0, 2.0]))
    # One alpha for many dictionaries is allowed, and alpha = 0 is a valid (least squares) cost.
    assert lsalsa.solve(Y, [A, A], 0.1, n_iter=2).codes.shape == (4, 2 * N)
    assert lsalsa.solve(Y, A, 0.0, n_iter=2).codes.shape == (4, N)


@pytest.mark.parametrize("mu", [0.0, -1.0, np.nan, np.inf, "ten", None, True, np.True_, "10"])
def test_mu_must_be_positive(good, mu):
    Y, A = good
    raises(r"mu must be a positive number", lambda: lsalsa.solve(Y, A, 0.1, method="salsa",
                                                                  mu=mu))


@pytest.mark.parametrize("n_iter", [0, -3, 2.5, True, "10"])
def test_n_iter_at_least_one(good, n_iter):
    Y, A = good
    raises(r"n_iter must be an integer >= 1", lambda: lsalsa.solve(Y, A, 0.1, n_iter=n_iter))


def test_other_solver_options(good):
    Y, A = good
    raises(r"method must be one of ista, fista, salsa, exact, got 'lars'",
           lambda: lsalsa.solve(Y, A, 0.1, method="lars"))
    for tol in (-1e-3, np.nan, "small"):
        raises(r"tol must be a number >= 0", lambda t=tol: lsalsa.solve(Y, A, 0.1, tol=t))
    raises(r"check_every must be an integer >= 1",
           lambda: lsalsa.solve(Y, A, 0.1, tol=1e-3, check_every=0))
    raises(r"output must be one of u, x, got 'd'", lambda: lsalsa.solve(Y, A, 0.1, method="salsa",
                                                               output="d"))
    raises(r"backend must be one of auto, spams, own, got 'gpu'",
           lambda: lsalsa.solve(Y, A, 0.1, method="exact", backend="gpu"))
    # NumPy integers come out of arrays and configs: they are fine.
    assert lsalsa.solve(Y, A, 0.1, n_iter=np.int64(3)).n_iter == 3


def test_spams_backend_needs_positive_alphas(good):
    pytest.importorskip("spams")
    Y, A = good
    raises(r"backend='spams' needs every alpha > 0",
           lambda: lsalsa.solve(Y, [A, A], [0.1, 0.0], method="exact", backend="spams"))


def test_mixed_dtypes(good):
    Y, A = good
    raises(r"dictionary has dtype torch.float64 but Y has torch.float32",
           lambda: lsalsa.solve(Y.astype(np.float32), A, 0.1))
    raises(r"dictionaries\[1\] has dtype torch.float32 but dictionaries\[0\] has torch.float64",
           lambda: lsalsa.solve(Y, [A, A.astype(np.float32)], [0.1, 0.1]))
    raises(r"X has dtype torch.float32",
           lambda: lsalsa.objective(Y, np.zeros((4, N), np.float32), A, 0.1))
    raises(r"dictionary has dtype torch.float64 but Y has torch.float32",
           lambda: lsalsa.solve(torch.from_numpy(Y).float(), torch.from_numpy(A), 0.1))


def test_unusable_array_types(good):
    Y, A = good
    raises(r"Y must be a numeric array, got dtype complex128",
           lambda: lsalsa.solve(Y.astype(complex), A, 0.1))
    raises(r"Y must be a numeric array", lambda: lsalsa.solve(Y.astype(str), A, 0.1))
    raises(r"Y must be float32 or float64, got torch.float16",
           lambda: lsalsa.solve(torch.from_numpy(Y).half(), A, 0.1))
    raises(r"Y must hold floating-point values",
           lambda: lsalsa.solve(torch.ones(4, M, dtype=torch.int32), A, 0.1))
    raises(r"dictionary must be a NumPy array or a torch tensor, got str",
           lambda: lsalsa.solve(Y, ["A.npy"], 0.1))


def test_mixed_devices_check():
    """The check itself, with 'meta' tensors (no values, no GPU needed)."""
    cpu = torch.zeros(2, 3, dtype=torch.float64)
    meta = torch.empty(2, 3, dtype=torch.float64, device="meta")
    with pytest.raises(InputError, match=r"Y is on meta but dictionary is on cpu; move them"):
        check_same_kind({"dictionary": cpu, "Y": meta})
    check_same_kind({"a": meta, "b": meta.clone()})  # same device and dtype: no error


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_mixed_devices_in_solve(good):
    Y, A = good
    Y_gpu = torch.from_numpy(Y).cuda()
    raises(r"Y is on cuda:0 but dictionary is on cpu",
           lambda: lsalsa.solve(Y_gpu, torch.from_numpy(A), 0.1))
    raises(r"is on cuda:0 but .* is on cpu",
           lambda: lsalsa.solve(Y_gpu, [torch.from_numpy(A), torch.from_numpy(A).cuda()],
                                0.1))


def test_zero_dimensional_array_reports_its_shape(good):
    _, A = good
    raises(r"Y must be 2-D \(batch, features\), got shape \(\)",
           lambda: lsalsa.solve(np.array(3.0), A, 0.1))


def test_big_endian_arrays_are_read(good):
    Y, A = good
    swapped = lsalsa.solve(Y.astype(">f8"), A.astype(">f8"), 0.1, n_iter=5).codes
    np.testing.assert_array_equal(swapped, lsalsa.solve(Y, A, 0.1, n_iter=5).codes)


@pytest.mark.parametrize("method", ["ista", "fista"])
def test_all_zero_dictionary_is_refused(good, method):
    Y, _ = good
    raises(r"the dictionary is all zeros",
           lambda: lsalsa.solve(Y, np.zeros((M, N)), 0.1, method=method))
    raises(r"the dictionary is all zeros", lambda: lsalsa.LISTA(np.zeros((M, N)), 0.1, 2))


@pytest.mark.parametrize("method", ["ista", "fista", "salsa", "exact"])
def test_signals_whose_square_overflows_are_refused(good, method):
    # ||y||^2 / 2 is the objective at x = 0: beyond the dtype's range no step or gap is
    # meaningful (before: NaN codes, or all-zero codes with a NaN gap, and no error).
    Y, A = good
    raises(r"Y holds values too large for float64",
           lambda: lsalsa.solve(Y * 1e300, A, 0.1, method=method))
    Y32, A32 = (Y / np.abs(Y).max() * 3e38).astype(np.float32), A.astype(np.float32)
    assert np.isfinite(Y32).all()
    if method != "exact":
        raises(r"Y holds values too large for float32",
               lambda: lsalsa.solve(Y32, A32, 0.1, method=method))


def test_exact_warning_counts_samples_with_a_nan_gap(good):
    from lsalsa.core.problem import make_problem
    from lsalsa.core.solvers.exact import exact_codes

    Y, A = good
    problem, _ = make_problem(A, 0.1)
    with pytest.warns(RuntimeWarning, match=r"4 of 4 samples did not reach"):
        exact_codes(problem, torch.from_numpy(Y * 1e300), max_iter=10)


def test_unknown_method_in_the_inner_loop_is_an_input_error(good):
    from lsalsa.core.problem import make_problem
    from lsalsa.core.solvers.classic import iterates

    Y, A = good
    problem, _ = make_problem(A, 0.1)
    raises(r"unknown method 'lars'", lambda: next(iterates(problem, torch.from_numpy(Y),
                                                            "lars", 3)))


def test_save_npy_refuses_non_finite_arrays(tmp_path):
    from lsalsa.io import save_npy

    for bad in (np.nan, np.inf):
        raises(r"would hold NaN or Inf", lambda b=bad: save_npy(tmp_path / "x.npy",
                                                                 np.array([1.0, b])))
    assert list(tmp_path.iterdir()) == []
    save_npy(tmp_path / "ints.npy", np.array([1, 2]))  # integers cannot be non-finite


def test_load_npy_names_a_text_file_and_a_folder(tmp_path):
    from lsalsa.io import load_npy

    (tmp_path / "text.npy").write_text("1 2 3\n")
    raises(r"text.npy is not a .npy file \(no NumPy header\)",
           lambda: load_npy(tmp_path / "text.npy"))
    raises(r"is a folder, not a .npy file", lambda: load_npy(tmp_path))


@pytest.mark.parametrize("command", [
    ["data", "prepare", "toy"],
    ["dictionary", "learn", "--data", "toy", "--alpha", "0.1", "--out", "d.npy"],
    ["codes", "tune-alpha", "--data", "toy", "--dict", "d.npy"],
    ["analyze", "m.safetensors", "--synthetic", "4"],
])
def test_negative_seed_is_a_usage_error(command, capsys):
    # NumPy's generators refused it later, with a traceback; argparse stops before any work.
    from lsalsa.cli import main

    code = main([*command, "--seed", "-1"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].endswith("argument --seed: expected an integer >= 0, "
                                                 "got -1")

"""Theorem 1 and the learned curvature (lsalsa.core.theory, lsalsa.workflow.analysis,
``lsalsa analyze``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import lsalsa
import lsalsa.core.theory
from _numerics import gamma
from conftest import random_dictionary
from lsalsa.cli import main
from lsalsa.core.theory import (
    curvature_report,
    theorem1_check,
    theorem1_verdict,
    x_update_residual,
)
from lsalsa.errors import InputError
from lsalsa.workflow.analysis import analyze

M, N, MU = 8, 16, 10.0


def sparse_signals(rng, A, count, density=0.2):
    X = rng.standard_normal((count, A.shape[1])) * (rng.random((count, A.shape[1])) < density)
    return X @ A.T + 0.01 * rng.standard_normal((count, A.shape[0]))


@pytest.fixture(scope="module")
def data():
    """A tiny problem, its signals and their exact codes (solved once for the module)."""
    rng = np.random.default_rng(2024)
    A = random_dictionary(rng, M, N)
    Y = sparse_signals(rng, A, 40)
    X_star = lsalsa.solve(Y, A, 0.1, method="exact", tol=1e-10).codes
    return A, Y, X_star


@pytest.fixture
def setup(data):
    return data[0], data[1]


def inverse_rounding(A, mu, extra=None) -> float:
    """Absolute bound on the rounding of S^-1 as the report forms it, and so of P, its norms
    and (Weyl) the eigenvalues of sym(S^-1), for S the inverse of H = mu I + A^T A (+ extra).

    S is formed within cond(H) gamma(n) relative; inverting it back multiplies that by
    cond(S) = cond(H) and adds its own cond(H) gamma(n); an eigensolver adds gamma(n) ||H||.
    n = max(M, N) + 2 also covers forming A^T A. The factor 4 covers the several terms.
    """
    H = mu * np.eye(A.shape[1]) + A.T @ A + (0 if extra is None else extra)
    eigs = np.linalg.eigvalsh(H)
    kappa = eigs[-1] / eigs[0]
    return 4 * kappa**2 * gamma(max(A.shape) + 2) * eigs[-1]


def train_tiny(data, depth=3, steps=60, untied=False, seed=0):
    """A short Adam run on 1/2 ||x* - f(y)||^2 with exact codes; returns (encoder, losses)."""
    A, Y, X_star = data
    torch.manual_seed(seed)
    encoder = lsalsa.LSALSA(A, 0.1, depth, MU, untied=untied)
    opt = torch.optim.Adam(encoder.parameters(), lr=3e-3)
    Y_t, X_t = torch.from_numpy(Y), torch.from_numpy(X_star)
    losses = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 16 x 16 problem: extra threads only add contention
    try:
        for _ in range(steps):
            opt.zero_grad()
            loss = 0.5 * ((encoder(Y_t) - X_t) ** 2).sum(dim=1).mean()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    finally:
        torch.set_num_threads(threads)
    return encoder, losses


# -- untrained: every learned quantity equals the original -------------------------------


def test_untrained_curvature_is_the_original(setup):
    A, _ = setup
    report = curvature_report(lsalsa.LSALSA(A, 0.1, 3, MU))
    gram = np.linalg.eigvalsh(A.T @ A)
    layer = report["layers"][0]
    H_norm = MU + gram[-1]
    rounding = inverse_rounding(A, MU)  # of S^-1 and what is computed from it
    # Two eigensolvers on A^T A formed twice: each within gamma(n) ||A^T A||.
    eig_rounding = 2 * gamma(max(A.shape) + 2) * gram[-1]
    assert layer["P_rel2"] <= rounding / H_norm
    assert layer["P_relfro"] <= np.sqrt(N) * rounding / np.linalg.norm(
        MU * np.eye(N) + A.T @ A)
    np.testing.assert_allclose(layer["quad_eigs"], gram, rtol=0, atol=rounding)
    np.testing.assert_allclose(report["gram_eigs"], gram, rtol=0, atol=eig_rounding)
    # Overcomplete (N > M): lambda_min(A^T A) = 0, so beta = mu, and beta_hat equals it.
    assert report["beta"] == pytest.approx(MU + gram[0], abs=eig_rounding)
    assert report["beta_hat"] == pytest.approx(report["beta"], abs=rounding + eig_rounding)
    assert report["beta_f1"] == pytest.approx(0.0, abs=eig_rounding)
    assert report["hessian_norm2"] == pytest.approx(H_norm)
    assert layer["symmetry_error"] == 0.0 and report["S_symmetric"]
    assert report["S_positive_definite"]
    assert layer["S_sym_min_eig"] == pytest.approx(1 / (MU + gram[-1]))
    # The paper's W_e = S_p^{-1} W from the stored (scaled) operators: A^T to the rounding of
    # the inverse, relative (S_p A^T is formed within cond(H) gamma(n), S_p^{-1} adds as much).
    assert report["W_e_rel_change"] <= rounding / H_norm


def test_untrained_theorem1_holds(setup):
    A, Y = setup
    check = theorem1_check(lsalsa.LSALSA(A, 0.1, 5, MU), Y)
    assert len(check["layers"]) == 5 and check["n_samples"] == len(Y)
    assert all(e["residual_max"] <= e["bound"] for e in check["layers"])
    assert check["symmetric"] and check["positive_definite"] and check["holds"]
    assert theorem1_verdict(check).startswith("Theorem 1 holds")


def test_float32_model_is_checked_in_float64(setup):
    A, Y = setup
    encoder = lsalsa.LSALSA(A.astype(np.float32), 0.1, 3, MU)
    check = theorem1_check(encoder, Y.astype(np.float32))
    # float32 rounding of the weights does not matter: the check is of the float64 network
    # with those weights (a symmetric S stays exactly symmetric when cast).
    assert check["holds"]
    # S was rounded to float32 (entrywise u32, so ||dS||_2 <= u32 ||S||_F), and P sees that
    # through the inverse: ||d(S^-1)|| / ||S^-1|| <= cond(S) ||dS|| / ||S||.
    A32 = A.astype(np.float32).astype(np.float64)
    H = MU * np.eye(N) + A32.T @ A32
    S = np.linalg.inv(H)
    rounding = (np.linalg.cond(H) * np.finfo(np.float32).eps / 2
                * np.linalg.norm(S) / np.linalg.norm(S, 2))
    assert curvature_report(encoder)["P_rel2"] <= (rounding + inverse_rounding(A32, MU)
                                                   / np.linalg.norm(H, 2))


def test_gradient_formula_is_the_autograd_gradient_of_L_hat(rng):
    # x_update_residual against autograd of L_hat written out, for a non-symmetric S (where
    # only the symmetric part of S^-1 enters the gradient).
    S = np.linalg.inv(np.eye(N) * MU + rng.standard_normal((N, N)))
    x, b, u, d = (rng.standard_normal((3, N)) for _ in range(4))
    x_t = torch.from_numpy(x).requires_grad_()
    b_t, u_t, d_t = (torch.from_numpy(a) for a in (b, u, d))
    Q = torch.linalg.inv(torch.from_numpy(S)) - MU * torch.eye(N, dtype=torch.float64)
    lagrangian = (0.5 * torch.einsum("bi,ij,bj->b", x_t, Q, x_t) - (b_t * x_t).sum(1)
                  + MU / 2 * ((u_t - x_t - d_t) ** 2).sum(1) - MU / 2 * (d_t ** 2).sum(1))
    (grad,) = torch.autograd.grad(lagrangian.sum(), x_t)
    S_inv = np.linalg.inv(S)
    residual, _ = x_update_residual((S_inv + S_inv.T) / 2, x, b, u, d, MU)
    # Two inverses of S (cond(S) gamma(n) relative each) and products of N terms.
    kappa = np.linalg.cond(S)
    magnitude = (np.linalg.norm(S_inv, 2) * np.linalg.norm(x, axis=1) + np.linalg.norm(b, axis=1)
                 + MU * np.linalg.norm(np.abs(u) + np.abs(d) + np.abs(x), axis=1))
    bound = 4 * kappa * gamma(N + 2) * magnitude
    assert np.all(np.abs(residual - torch.linalg.vector_norm(grad, dim=1).numpy()) <= bound)


def test_the_check_fails_for_a_wrong_x_update(setup, monkeypatch):
    """The check can fail: a network whose x-update is not S v is caught."""
    A, Y = setup
    encoder = lsalsa.LSALSA(A, 0.1, 3, MU)  # symmetric S: the check holds ...
    assert theorem1_check(encoder, Y)["holds"]
    original = lsalsa.core.theory.salsa_step

    def wrong_operator(u, d, b, S, tau):  # ... until the step multiplies by S (1 + 1e-6)
        return original(u, d, b, S * (1 + 1e-6), tau)

    monkeypatch.setattr(lsalsa.core.theory, "salsa_step", wrong_operator)
    check = theorem1_check(encoder, Y)
    assert not check["stationary"] and not check["holds"]
    # From the zero state the first x-update is W y (no product with S): layers 2 and 3.
    assert all(e["residual_max"] > 1e3 * e["bound"] for e in check["layers"][1:])
    assert "does NOT hold" in theorem1_verdict(check)

    def wrong_input(u, d, b, S, tau):  # W_e y off by 1e-6
        return original(u, d, b * (1 + 1e-6), S, tau)

    monkeypatch.setattr(lsalsa.core.theory, "salsa_step", wrong_input)
    assert not theorem1_check(encoder, Y)["holds"]


# -- trained -----------------------------------------------------------------------------


@pytest.mark.parametrize("untied", [False, True])
def test_trained_nonsymmetric_S_fails_theorem1(data, untied):
    Y = data[1]
    encoder, losses = train_tiny(data, untied=untied)
    assert losses[-1] < 0.7 * losses[0]  # it really trained
    check = theorem1_check(encoder, Y)
    report = curvature_report(encoder)
    # An untied model's first S is never applied (the first x-update is W y from the zero
    # state): the curvature leaves it out, the Theorem 1 check keeps it.
    assert [e["layer"] for e in report["layers"]] == ([2, 3] if untied else ["all"])
    # Training moved S off (mu I + A^T A)^{-1} and made it non-symmetric ...
    used = slice(1, None) if untied else slice(None)
    assert report["P_rel2"] > 1e-3
    assert all(e["symmetry_error"] > 1e-6 for e in report["layers"])
    assert all(e["P_rel2"] > 1e-3 for e in report["layers"])
    assert not report["S_symmetric"] and not check["symmetric"]
    # ... so the x-update S v is not the minimiser of L_hat as written: the check says so.
    assert all(e["residual_max"] > 1e3 * e["bound"] for e in check["layers"][used])
    assert not check["stationary"] and not check["holds"]
    assert "does not apply: S is not symmetric" in theorem1_verdict(check)
    assert report["W_e_rel_change"] > 0


def test_theorem1_holds_for_trained_symmetric_S(data):
    # Symmetrising a trained S gives a genuinely learned, symmetric S: the theorem holds.
    Y = data[1]
    encoder, _ = train_tiny(data, steps=30)
    with torch.no_grad():
        encoder.S.copy_((encoder.S + encoder.S.T) / 2)
    check = theorem1_check(encoder, Y)
    assert curvature_report(encoder)["P_rel2"] > 1e-3
    assert check["symmetric"] and check["holds"]


# -- a known perturbation ----------------------------------------------------------------


def test_perturbed_S_recovers_P(setup, rng):
    A, _ = setup
    H = MU * np.eye(N) + A.T @ A
    B = rng.standard_normal((N, N))
    P0 = (B + B.T) / np.linalg.norm(B + B.T, 2)  # symmetric, ||P0||_2 = 1
    encoder = lsalsa.LSALSA(A, 0.1, 2, MU)
    with torch.no_grad():
        encoder.S.copy_(torch.from_numpy(MU * np.linalg.inv(H + P0)))  # stored scaled
    report = curvature_report(encoder)
    layer = report["layers"][0]
    # S^-1 (hence P and the eigenvalues) within inverse_rounding of H + P0 (absolute).
    rounding = inverse_rounding(A, MU, P0)
    assert layer["P_norm2"] == pytest.approx(1.0, abs=rounding)
    assert layer["P_fro"] == pytest.approx(np.linalg.norm(P0), abs=np.sqrt(N) * rounding)
    assert layer["P_rel2"] == pytest.approx(1.0 / np.linalg.norm(H, 2),
                                            abs=2 * rounding / np.linalg.norm(H, 2))
    np.testing.assert_allclose(layer["P_sym_eigs"], np.linalg.eigvalsh(P0), rtol=0,
                               atol=rounding)
    np.testing.assert_allclose(layer["quad_eigs"], np.linalg.eigvalsh(A.T @ A + P0), rtol=0,
                               atol=rounding)
    assert layer["beta_hat"] == pytest.approx(np.linalg.eigvalsh(H + P0)[0], abs=rounding)
    # inv of a symmetric matrix is symmetric to cond gamma(n) relative.
    assert layer["symmetry_error"] <= 2 * np.linalg.cond(H + P0) * gamma(N + 2)


def test_indefinite_S_is_reported(setup):
    A, _ = setup
    encoder = lsalsa.LSALSA(A, 0.1, 2, MU)
    with torch.no_grad():
        # The paper's S_p = diag(-2, ..., 1); the encoder stores mu S_p.
        encoder.S.copy_(MU * torch.diag(torch.linspace(0.5, 1.0, N, dtype=torch.float64)))
        encoder.S[0, 0] = -2.0 * MU
    report = curvature_report(encoder)
    assert not report["S_positive_definite"]
    assert report["layers"][0]["S_sym_min_eig"] == pytest.approx(-2.0)
    assert report["beta_hat"] == pytest.approx(-0.5)  # S^{-1} has eigenvalues 1/s_i


# -- errors ------------------------------------------------------------------------------


def test_lista_and_bad_inputs_are_refused(setup):
    A, Y = setup
    lista = lsalsa.LISTA(A, 0.1, 2)
    with pytest.raises(InputError, match="LSALSA"):
        theorem1_check(lista, Y)
    with pytest.raises(InputError, match="LSALSA"):
        curvature_report(lista)
    with pytest.raises(InputError, match="M = 8"):
        theorem1_check(lsalsa.LSALSA(A, 0.1, 2), Y[:, :5])


# -- files and the CLI -------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path, setup):
    A, Y = setup
    model = lsalsa.LSALSA(A, 0.1, 2, MU, untied=True).save(tmp_path / "m.safetensors")
    lista = lsalsa.LISTA(A, 0.1, 2).save(tmp_path / "lista.safetensors")
    signals = tmp_path / "y.npy"
    np.save(signals, Y)
    return model, lista, signals


def test_analyze_writes_report(saved, tmp_path):
    model, _, signals = saved
    out = tmp_path / "out"
    result = analyze(model, np.load(signals), out, n_samples=10, seed=3)
    assert sorted(p.name for p in out.iterdir()) == ["analysis.json", "analysis.md",
                                                     "spectrum.png", "theorem1.png"]
    stored = json.loads((out / "analysis.json").read_text())
    assert stored["theorem1"]["n_samples"] == 10
    assert stored["theorem1"]["residual_max"] == result["theorem1"]["residual_max"]
    # Untied, 2 layers: both x-updates checked, the curvature of the one S that acts.
    assert [e["layer"] for e in stored["theorem1"]["layers"]] == [1, 2]
    assert [e["layer"] for e in stored["curvature"]["layers"]] == [2]
    for png in ("spectrum.png", "theorem1.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    text = (out / "analysis.md").read_text()
    # An untrained (symmetric) model: the check passes, and the report says so.
    assert "Theorem 1 holds" in text and "beta_hat" in text and "theorem1.png" in text
    assert "rounding bound" in text


def test_cli_end_to_end(saved, tmp_path, capsys):
    model, _, signals = saved
    out = tmp_path / "cli-out"
    assert main(["analyze", str(model), "--signals", str(signals), "--out", str(out)]) == 0
    stored = json.loads((out / "analysis.json").read_text())
    assert stored["theorem1"]["holds"]
    assert stored["theorem1"]["n_samples"] == 40
    assert "Theorem 1" in capsys.readouterr().out
    # Without signals: synthetic ones, and the default folder beside the model.
    assert main(["analyze", str(model), "--synthetic", "7"]) == 0
    stored = json.loads((tmp_path / "m-analysis" / "analysis.json").read_text())
    assert stored["theorem1"]["n_samples"] == 7 and "synthetic" in stored["signals"]


def test_cli_errors_write_nothing(saved, tmp_path, capsys):
    model, lista, signals = saved
    wide = tmp_path / "wide.npy"
    np.save(wide, np.ones((4, M + 1)))
    # astype would drop an imaginary part with a warning and fail on text with a traceback.
    np.save(tmp_path / "complex.npy", np.ones((4, M)) + 1j)
    np.save(tmp_path / "text.npy", np.full((4, M), "a"))
    out = tmp_path / "never"
    cases = [
        ([str(tmp_path / "missing.safetensors"), "--signals", str(signals)], "not found"),
        ([str(lista), "--signals", str(signals)], "LSALSA"),
        ([str(model), "--signals", str(wide)], "must have shape (B, 8)"),
        ([str(model), "--signals", str(tmp_path / "nope.npy")], "not found"),
        ([str(model), "--signals", str(signals), "--n-samples", "0"], "n-samples"),
        ([str(model), "--signals", str(tmp_path / "complex.npy")], "must hold real numbers"),
        ([str(model), "--signals", str(tmp_path / "text.npy")], "must hold real numbers"),
    ]
    for argv, message in cases:
        assert main(["analyze", *argv, "--out", str(out)]) == 2
        assert message in capsys.readouterr().err
        assert not out.exists()
    assert not (tmp_path / "lista-analysis").exists()


def test_cli_reads_a_prepared_data_set(saved, tmp_path):
    model, _, signals = saved
    prepared = tmp_path / "toy"
    prepared.mkdir()
    (prepared / "meta.json").write_text(json.dumps({"name": "toy", "kind": "sc", "M": M,
                                                    "stand_in": True}))
    np.save(prepared / "test_signals.npy", np.load(signals)[:12].astype(np.float32))
    out = tmp_path / "from-data"
    assert main(["analyze", str(model), "--data", str(prepared), "--out", str(out)]) == 0
    stored = json.loads((out / "analysis.json").read_text())
    assert stored["theorem1"]["n_samples"] == 12 and stored["theorem1"]["holds"]
    assert "toy" in stored["signals"] and "stand-in" in stored["signals"]
    assert main(["analyze", str(model), "--data", str(prepared), "--split", "train",
                 "--out", str(tmp_path / "no-train")]) == 2
    assert not (tmp_path / "no-train").exists()

"""Theory tools for trained LSALSA encoders: Theorem 1 and the learned curvature (paper, Sec. 5).

Theorem 1 says every LSALSA x-update minimises over ``x`` the learned augmented Lagrangian

``L_hat(x, u, d) = 1/2 x^T (S^{-1} - mu I) x - (W_e y)^T x + 1/2 y^T y + l1(u)
+ mu/2 ||u - x - d||^2 - mu/2 ||d||^2``,

whose x-gradient is ``sym(S^{-1}) x - W_e y - mu (u - d)`` (a quadratic form sees only the
symmetric part of its matrix) and whose Hessian in x is ``sym(S^{-1})``. The network's x-update
``x = S (W_e y + mu (u - d))`` is that minimiser exactly when ``S`` is symmetric and
``sym(S^{-1})`` is positive definite; for a non-symmetric ``S`` no quadratic has gradient
``S^{-1} x``, and the statement does not apply. The check below measures that gradient at the
network's x-updates with ``S^{-1}`` and ``W_e y`` formed independently of the network (NumPy,
from the stored weights), against a rounding bound: it fails for a non-symmetric ``S`` and for
an x-update that is not ``S v``.

The learned curvature is ``P = S^{-1} - (mu I + A^T A)``: zero at initialisation, and the
paper's Sec. 5.2 reads a trained LSALSA as a Newton-like step with the Hessian
``mu I + A^T A`` replaced by ``S^{-1}``. Sec. 5.3 compares the convexity moduli ``beta`` (of
``L_A`` in ``x``: the smallest eigenvalue of ``mu I + A^T A``) and ``beta_hat`` (of ``L_hat``
in ``x``: the smallest eigenvalue of the symmetric part of ``S^{-1}``).

The encoder stores the splitting step in scaled form, ``x = W y + S (u - d)``
(:mod:`lsalsa.core.encoders`); here ``S`` and ``W_e`` are the paper's, ``S_p = S / mu`` and
``W_e = S_p^{-1} W`` (:meth:`~lsalsa.core.encoders.UnrolledEncoder.paper_operators`), one pair per
layer for an untied model.

Everything here runs in float64 on the CPU, whatever the model's dtype and device: the
quantities checked are at rounding level and must not be swamped by float32 rounding.

Numerics only: encoders and arrays in, plain result dicts (JSON-ready) out. Reading a model
and writing the analysis folder is :mod:`lsalsa.workflow.analysis`; its figures and Markdown
are :mod:`lsalsa.workflow.report.theory`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..checks import positive_int
from ..errors import InputError
from ._arrays import as_signals, sorted_subset
from .encoders import UnrolledEncoder
from .operators import encode_input, salsa_step

#: Default number of signals used for the Theorem 1 check.
DEFAULT_SAMPLES = 1000
#: How the rounding bound of the check is formed (stored with every result).
BOUND_FORMULA = "4 sqrt(N) cond(S)^2 gamma_n, gamma_n = n u / (1 - n u), n = max(N, M) + 2"

_F64 = {"dtype": torch.float64, "device": "cpu"}


def _require_lsalsa(encoder) -> None:
    if not isinstance(encoder, UnrolledEncoder) or encoder.kind != "lsalsa":
        kind = getattr(encoder, "kind", type(encoder).__name__)
        raise InputError(f"analyze needs an LSALSA model, got {kind!r} (Theorem 1 and the "
                         "learned curvature are statements about LSALSA)")


def _layer_operators(encoder) -> list[torch.Tensor]:
    """The stored (scaled) splitting operator of each layer, float64 on the CPU (T entries)."""
    S = encoder.S.detach().to(**_F64)
    return [S[t] if encoder.untied else S for t in range(encoder.depth)]


def x_update_residual(H: np.ndarray, x: np.ndarray, b: np.ndarray, u: np.ndarray | None,
                      d: np.ndarray | None, mu: float) -> tuple[np.ndarray, np.ndarray]:
    """The x-gradient of ``L_hat`` at a network x-update, and the sizes of its terms.

    Parameters
    ----------
    H : (N, N) the Hessian of ``L_hat`` in x, ``sym(S^{-1})``
    x : (B, N) the layer's x-update as the network computed it
    b : (B, N) ``W_e y``
    u, d : (B, N) the previous layer's state, or None for the zero start
    mu : ADMM penalty

    Returns
    -------
    ``(residual, scale)``, each (B,): ``||H x - b - mu (u - d)||`` and
    ``||H x|| + ||b|| + mu ||u - d||``.
    """
    pull = np.zeros_like(b) if u is None else mu * (u - d)
    Hx = x @ H.T
    residual = np.linalg.norm(Hx - b - pull, axis=1)
    scale = (np.linalg.norm(Hx, axis=1) + np.linalg.norm(b, axis=1)
             + np.linalg.norm(pull, axis=1))
    return residual, scale


def _rounding_bound(S: np.ndarray, M: int) -> tuple[float, float]:
    """``(bound, cond(S))``: how large the relative residual may be from rounding alone.

    The network forms ``x = S v`` within ``gamma_N || |S| |v| || <= gamma_N sqrt(N) ||S|| ||v||``,
    which ``S^{-1}`` maps to at most ``sqrt(N) cond(S) gamma_N ||v||``; the inverse formed here
    is within ``cond(S) gamma_N`` of ``S^{-1}`` relative, which costs ``cond(S)`` again when
    ``||S^{-1}|| ||x||`` is compared with ``||S^{-1} x||``; ``W_e y`` (length M) and the
    products add ``gamma_n`` terms. First order; the factor 4 covers the several terms.
    """
    N = S.shape[0]
    n = max(N, M) + 2
    nu = n * np.finfo(np.float64).eps / 2
    singular = np.linalg.svd(S, compute_uv=False)
    cond = float(singular[0] / singular[-1]) if singular[-1] > 0 else math.inf
    return 4 * math.sqrt(N) * cond**2 * nu / (1 - nu), cond


def _layer_quantities(operators, W_np: np.ndarray, mu: float, M: int) -> tuple[list, list, list]:
    """Per layer: its entry of the check (bound, ``cond(S)``, asymmetry, the Hessian's smallest
    eigenvalue), the Hessian ``sym(S^{-1})`` and the paper's ``W_e``, from the paper's
    ``S = S_scaled / mu``."""
    layers, hessians, inputs = [], [], []
    for t, S in enumerate(operators):
        S_np = S.numpy() / mu  # the paper's S
        try:
            S_inv = np.linalg.inv(S_np)
        except np.linalg.LinAlgError as exc:
            raise InputError("the model's S is singular: Theorem 1 needs an invertible S") from exc
        H = (S_inv + S_inv.T) / 2
        inputs.append(S_inv @ W_np)  # the paper's W_e of this layer
        bound, cond = _rounding_bound(S_np, M)
        norm = float(np.linalg.norm(S_np))
        layers.append({"layer": t + 1, "bound": bound, "cond_S": cond,
                       "symmetry_error": float(np.linalg.norm(S_np - S_np.T)) / norm
                       if norm else 0.0,
                       "hessian_min_eig": float(np.linalg.eigvalsh(H)[0])})
        hessians.append(H)
    return layers, hessians, inputs


def theorem1_check(encoder, Y, batch_size: int = 4096) -> dict:
    """Check Theorem 1 layer by layer on signals ``Y`` (B, M), in float64.

    The network is run with :func:`lsalsa.core.operators.salsa_step` (the step the encoder
    unrolls) on float64 copies of its weights. At each layer ``t`` the x-gradient of
    ``L_hat(x, u^{t-1}, d^{t-1})`` at the network's ``x^t`` is formed independently (NumPy:
    ``sym(S^{-1})`` from the stored ``S``, ``W_e y`` from the stored ``W_e``) and measured
    relative to ``||sym(S^{-1}) x|| + ||W_e y|| + mu ||u - d||`` (max and median over samples).
    It is zero up to rounding exactly when the x-update is the stationary point of ``L_hat``;
    the rounding bound of each layer (``BOUND_FORMULA``) grows with ``cond(S)``. The statement
    (stationary point = minimiser) also needs ``sym(S^{-1})`` positive definite.

    A non-symmetric ``S`` fails the check by the size of its asymmetry: its x-update solves
    ``S^{-1} x = W_e y + mu (u - d)``, which is the gradient of no quadratic, so it is not the
    minimiser of ``L_hat`` and Theorem 1 does not apply to it.

    Returns
    -------
    dict with ``layers`` (one dict per layer: ``layer``, ``residual_max``,
    ``residual_median``, ``bound``, ``cond_S``, ``symmetry_error``
    ``||S - S^T||_F / ||S||_F`` and ``hessian_min_eig``, the smallest eigenvalue of
    ``sym(S^{-1})``), ``residual_max`` over all layers, ``n_samples``, ``bound_formula``,
    ``stationary`` (every layer's residual within its bound), ``positive_definite`` (every
    ``sym(S^{-1})``), ``symmetric`` (every ``S`` exactly) and ``holds``
    (stationary and positive definite: the x-updates are the minimisers of ``L_hat``).
    """
    _require_lsalsa(encoder)
    Y_t, _ = as_signals(Y, "signals")
    M = encoder.W.shape[1]
    if Y_t.shape[1] != M:
        raise InputError(f"signals have {Y_t.shape[1]} features per sample but the model "
                         f"expects M = {M}")
    batch_size = positive_int(batch_size, "batch_size")
    W = encoder.W.detach().to(**_F64)
    W_np = W.numpy()
    tau = encoder._tau().detach().to(**_F64)  # the thresholds the network really uses
    operators = _layer_operators(encoder)
    mu = float(encoder.mu)
    layers, hessians, inputs = _layer_quantities(operators, W_np, mu, M)
    relative: list[list[np.ndarray]] = [[] for _ in operators]
    with torch.no_grad():
        for start in range(0, Y_t.shape[0], batch_size):
            Y_batch = Y_t[start:start + batch_size].to(**_F64)
            b = encode_input(Y_batch, W)  # the network's input step
            u = d = None
            for t, S in enumerate(operators):
                x, u_next, d_next = salsa_step(u, d, b, S, tau)
                b_check = Y_batch.numpy() @ inputs[t].T  # W_e y, formed apart from the network
                residual, scale = x_update_residual(
                    hessians[t], x.numpy(), b_check, None if u is None else u.numpy(),
                    None if d is None else d.numpy(), mu)
                # An all-zero sample (y = 0) has zero terms and zero residual: count it as 0.
                relative[t].append(residual / np.maximum(scale, np.finfo(np.float64).tiny))
                u, d = u_next, d_next
    for entry, values in zip(layers, relative, strict=True):
        values = np.concatenate(values)
        entry["residual_max"] = float(values.max())
        entry["residual_median"] = float(np.median(values))
    stationary = all(e["residual_max"] <= e["bound"] for e in layers)
    positive = all(e["hessian_min_eig"] > 0 for e in layers)
    return {
        "n_samples": int(Y_t.shape[0]),
        "bound_formula": BOUND_FORMULA,
        "layers": layers,
        "residual_max": max(e["residual_max"] for e in layers),
        "stationary": stationary,
        "positive_definite": positive,
        "symmetric": all(e["symmetry_error"] == 0.0 for e in layers),
        "holds": stationary and positive,
    }


def theorem1_verdict(check: dict) -> str:
    """One sentence on what the check showed (used by the report and the CLI)."""
    worst = max(check["layers"], key=lambda e: e["residual_max"] / e["bound"])
    measured = (f"largest relative gradient of L_hat {worst['residual_max']:.2e} (layer "
                f"{worst['layer']}, rounding bound {worst['bound']:.2e})")
    if check["holds"]:
        return ("Theorem 1 holds: every x-update is the minimiser of L_hat to rounding "
                f"({measured}; sym(S^-1) positive definite).")
    if check["stationary"]:
        return ("Theorem 1 does not hold: the x-updates are stationary points of L_hat "
                f"({measured}) but sym(S^-1) is not positive definite, so not minimisers.")
    asymmetric = max(e["symmetry_error"] for e in check["layers"])
    if asymmetric > 0:
        return ("Theorem 1 does not apply: S is not symmetric (||S - S^T||_F / ||S||_F = "
                f"{asymmetric:.2e}), so the x-update S v is not the minimiser of L_hat, "
                f"whose quadratic term sees only sym(S^-1) ({measured}). The paper's "
                "statement and Sec. 5.2 assume a symmetric S.")
    return f"Theorem 1 does NOT hold: the x-updates are not stationary points ({measured})."


def _sym(X: torch.Tensor) -> torch.Tensor:
    return (X + X.T) / 2


def _layer_curvature(S: torch.Tensor, gram: torch.Tensor, mu: float) -> dict:
    N = S.shape[0]
    eye = torch.eye(N, **_F64)
    hessian = mu * eye + gram  # of L_A in x
    try:
        S_inv = torch.linalg.solve(S, eye)
    except torch.linalg.LinAlgError as exc:
        raise InputError("the model's S is singular: Theorem 1 needs an invertible S") from exc
    P = S_inv - hessian
    quad = _sym(S_inv) - mu * eye  # the learned counterpart of A^T A
    quad_eigs = torch.linalg.eigvalsh(quad)
    S_norm = float(torch.linalg.matrix_norm(S))
    S_sym_min = float(torch.linalg.eigvalsh(_sym(S))[0])
    symmetry_error = float(torch.linalg.matrix_norm(S - S.T)) / S_norm if S_norm else 0.0
    H2 = float(torch.linalg.matrix_norm(hessian, ord=2))
    HF = float(torch.linalg.matrix_norm(hessian))
    return {
        "P_norm2": float(torch.linalg.matrix_norm(P, ord=2)),
        "P_fro": float(torch.linalg.matrix_norm(P)),
        "P_rel2": float(torch.linalg.matrix_norm(P, ord=2)) / H2,
        "P_relfro": float(torch.linalg.matrix_norm(P)) / HF,
        "symmetry_error": symmetry_error,
        # Tolerance: a float32 model that was symmetric is exactly symmetric after casting.
        "S_symmetric": symmetry_error <= 1e-12,
        "S_sym_min_eig": S_sym_min,
        "S_positive_definite": S_sym_min > 0,
        "S_cond": float(torch.linalg.cond(S)),
        # x^T S^{-1} x = z^T S z with z = S^{-1} x, so sym(S^{-1}) is PD exactly when sym(S) is;
        # both are reported so the reader need not take that on trust.
        "beta_hat": float(quad_eigs[0]) + mu,
        "beta_hat_f1": float(quad_eigs[0]),
        "quad_max_eig": float(quad_eigs[-1]),
        "P_sym_eigs": torch.linalg.eigvalsh(_sym(P)).tolist(),
        "quad_eigs": quad_eigs.tolist(),
    }


def curvature_report(encoder) -> dict:
    """The learned curvature of an LSALSA encoder against the original problem's, in float64.

    With ``H = mu I + A^T A`` (the Hessian of ``L_A`` in ``x``) and, per layer (one entry when
    ``S`` is tied; layers 2 to T when untied and T > 1, the first S never acting; with one
    layer no S acts and ``P`` stays 0), ``P = S^{-1} - H``:

    - ``P_norm2``, ``P_fro`` and their ratios to ``||H||`` (``P_rel2``, ``P_relfro``);
    - ``symmetry_error`` ``||S - S^T||_F / ||S||_F``, ``S_symmetric``; ``S_sym_min_eig``, the
      smallest eigenvalue of ``sym(S)``, and ``S_positive_definite``; ``S_cond``;
    - ``quad_eigs``: the ascending eigenvalues of the learned quadratic term
      ``sym(S^{-1}) - mu I`` (the learned counterpart of ``A^T A``); ``P_sym_eigs``, those of
      ``sym(P)``;
    - ``beta_hat = lambda_min(sym(S^{-1}))``, the convexity modulus of ``L_hat`` in ``x`` (the
      paper's beta-hat, Sec. 5.3), against ``beta = lambda_min(mu I + A^T A)`` at top level;
      ``beta_hat_f1 = beta_hat - mu`` against ``beta_f1 = lambda_min(A^T A)`` are the same
      moduli for the smooth data term alone (``f1_hat`` vs ``1/2 ||y - A x||^2``).

    Also ``W_e_rel_change`` ``||W_e - A^T||_F / ||A^T||_F`` (the largest over the layers of
    an untied model; Sec. 5.2 holds ``W_e = A^T`` fixed) and ``gram_eigs`` (ascending
    eigenvalues of ``A^T A``).
    """
    _require_lsalsa(encoder)
    mu = float(encoder.mu)
    A = encoder.dictionary.detach().to(**_F64)
    gram = A.T @ A
    gram_eigs = torch.linalg.eigvalsh(gram)
    W_e, S_p = encoder.paper_operators()
    operators = list(S_p) if encoder.untied else [S_p]
    inputs = list(W_e) if encoder.untied else [W_e]
    # An untied model's first S multiplies the zero start (x_1 = W y whatever it is): it is
    # never trained, and its curvature is SALSA's, so only the later layers are reported.
    first = 1 if encoder.untied and encoder.depth > 1 else 0
    operators, inputs = operators[first:], inputs[first:]
    layers = []
    for t, S in enumerate(operators, start=first):
        entry = _layer_curvature(S, gram, mu)
        entry["layer"] = t + 1 if encoder.untied else "all"
        layers.append(entry)
    return {
        "mu": mu,
        "M": int(A.shape[0]),
        "N": int(A.shape[1]),
        "depth": int(encoder.depth),
        "untied": bool(encoder.untied),
        "beta": float(gram_eigs[0]) + mu,
        "beta_f1": float(gram_eigs[0]),
        "hessian_norm2": float(gram_eigs[-1]) + mu,
        "W_e_rel_change": max(float(torch.linalg.matrix_norm(W - A.T)
                                    / torch.linalg.matrix_norm(A)) for W in inputs),
        "gram_eigs": gram_eigs.tolist(),
        "layers": layers,
        "S_symmetric": all(e["S_symmetric"] for e in layers),
        "S_positive_definite": all(e["S_positive_definite"] for e in layers),
        "beta_hat": min(e["beta_hat"] for e in layers),
        "P_rel2": max(e["P_rel2"] for e in layers),
    }


def pick_samples(Y: np.ndarray, n_samples: int | None, seed: int) -> tuple[np.ndarray, str]:
    """At most ``n_samples`` rows of ``Y`` (None: all), drawn without replacement with
    ``seed`` and kept in their order, and a description of the draw for the report."""
    if n_samples is None or n_samples >= Y.shape[0]:
        return Y, "all"
    rows = sorted_subset(Y.shape[0], n_samples, np.random.default_rng(seed))
    return Y[rows], f"{n_samples} drawn with seed {seed}"

"""The figures and the Markdown of an LSALSA analysis (``lsalsa analyze``), drawn from its
stored result: the dict that :func:`lsalsa.workflow.analysis.analyze` writes to
``analysis.json`` (``theorem1`` from :func:`lsalsa.core.theory.theorem1_check`, ``curvature``
from :func:`lsalsa.core.theory.curvature_report`).

Figures use :class:`matplotlib.figure.Figure` (no global pyplot state) and are written
atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.theory import BOUND_FORMULA, theorem1_verdict
from .figures import save_png

#: The analysis figures and their file names in the analysis folder.
FIGURES = {"spectrum": "spectrum.png", "theorem1": "theorem1.png"}


def spectrum_figure(curvature: dict):
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    index = np.arange(1, curvature["N"] + 1)
    left.plot(index, curvature["gram_eigs"], "k-", lw=2, label="A^T A (original)")
    several = len(curvature["layers"]) > 1 or bool(curvature.get("untied"))  # name them
    for entry in curvature["layers"]:
        label = f"sym(S^-1) - mu I, layer {entry['layer']}" if several else "sym(S^-1) - mu I"
        left.plot(index, entry["quad_eigs"], "--", lw=1.2, label=label)
        right.plot(index, entry["P_sym_eigs"], "-", lw=1.2,
                   label=f"layer {entry['layer']}" if several else None)
    values = np.abs(np.concatenate([curvature["gram_eigs"]]
                                   + [e["quad_eigs"] for e in curvature["layers"]]))
    top = float(values.max()) if values.size else 1.0
    # Overcomplete A^T A has N - M zero eigenvalues and learned ones can go negative:
    # a symmetric log scale shows both ends of the spectrum.
    linthresh = max(top * 1e-4, 1e-12)
    left.set_yscale("symlog", linthresh=linthresh, linscale=2.0)
    # Label 0 but not the crowded ticks at +-linthresh right beside it.
    plain = left.yaxis.get_major_formatter()
    left.yaxis.set_major_formatter(FuncFormatter(
        lambda v, pos: "" if 0 < abs(v) <= linthresh * 1.001 else plain(v, pos)))
    left.set_xlabel("index (ascending)")
    left.set_ylabel("eigenvalue")
    left.set_title("quadratic term: learned vs original")
    left.legend(fontsize=8)
    right.axhline(0.0, color="k", lw=0.5)
    right.set_xlabel("index (ascending)")
    right.set_ylabel("eigenvalue")
    right.set_title("learned curvature: sym(P), P = S^-1 - (mu I + A^T A)", fontsize=10)
    if several:
        right.legend(fontsize=8)
    return fig


def theorem1_figure(check: dict):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4), layout="constrained")
    ax = fig.subplots()
    layers = [e["layer"] for e in check["layers"]]
    floor = 1e-18  # an exactly zero residual still needs a place on a log axis
    ax.plot(layers, [max(e["residual_max"], floor) for e in check["layers"]], "o-",
            label="grad of L_hat (sym(S^-1)), max")
    ax.plot(layers, [e["bound"] for e in check["layers"]], "r:", label="rounding bound")
    ax.axhline(np.finfo(np.float64).eps, color="gray", lw=0.8, ls=":", label="float64 eps")
    ax.set_yscale("log")
    ax.set_xlabel("layer t")
    ax.set_ylabel("relative x-gradient of L_hat")
    ax.set_title(f"Theorem 1 check ({check['n_samples']} signals)")
    ax.set_xticks(layers)
    ax.legend(fontsize=8)
    return fig


def analysis_figures(result: dict) -> dict:
    """``{name: Figure}`` for each entry of :data:`FIGURES`."""
    return {"spectrum": spectrum_figure(result["curvature"]),
            "theorem1": theorem1_figure(result["theorem1"])}


def save_figure(fig, path: Path) -> None:
    save_png(fig, path, 120)


def analysis_markdown(result: dict) -> str:
    """``analysis.md``: the Theorem 1 and curvature tables, the verdict and the figures."""
    c, t = result["curvature"], result["theorem1"]
    lines = [
        "# LSALSA analysis: Theorem 1 and the learned curvature",
        "",
        f"Model `{result['model']}` (depth {c['depth']}, M = {c['M']}, N = {c['N']}, "
        f"mu = {c['mu']:g}, {'untied' if c['untied'] else 'tied'} S); "
        f"signals: {result['signals']}, {t['n_samples']} samples. All numbers in float64.",
        "",
        "## Theorem 1",
        "",
        "Relative x-gradient of the learned augmented Lagrangian, "
        "||sym(S^-1) x - W_e y - mu (u - d)|| / (||sym(S^-1) x|| + ||W_e y|| + mu ||u - d||), "
        "at each x-update of the network (max over samples), formed from the stored weights "
        f"apart from the network, against its rounding bound ({BOUND_FORMULA}):",
        "",
        "| layer | gradient of L_hat | rounding bound | cond(S) | S symmetry error "
        "| min eig sym(S^-1) |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {e['layer']} | {e['residual_max']:.2e} | {e['bound']:.2e} | "
              f"{e['cond_S']:.3g} | {e['symmetry_error']:.2e} | {e['hessian_min_eig']:.3g} |"
              for e in t["layers"]]
    lines += ["", theorem1_verdict(t), "", f"![Theorem 1]({FIGURES['theorem1']})", "",
              "## Learned curvature P = S^-1 - (mu I + A^T A)", "",
              f"beta = lambda_min(mu I + A^T A) = {c['beta']:.6g}; "
              f"lambda_min(A^T A) = {c['beta_f1']:.3g}; "
              f"||mu I + A^T A||_2 = {c['hessian_norm2']:.6g}; "
              f"||W_e - A^T||_F / ||A||_F = {c['W_e_rel_change']:.3g}.", "",
              # ASCII names in the table: a "|" inside a cell would split it.
              "| layer | P rel. spectral norm | P rel. Frobenius norm | beta_hat "
              "| beta_hat - beta | S symmetry error | min eig sym(S) | cond(S) |",
              "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {e['layer']} | {e['P_rel2']:.3g} | {e['P_relfro']:.3g} | "
              f"{e['beta_hat']:.6g} | {e['beta_hat'] - c['beta']:+.3g} | "
              f"{e['symmetry_error']:.2e} | {e['S_sym_min_eig']:.3g} | {e['S_cond']:.3g} |"
              for e in c["layers"]]
    lines += ["", "P rel. norms: ||P|| / ||mu I + A^T A|| (spectral, Frobenius); S symmetry "
              "error: ||S - S^T||_F / ||S||_F.", "",
              "beta and beta_hat are the convexity moduli in x of L_A and L_hat (paper "
              "Sec. 5.3): the smallest eigenvalues of mu I + A^T A and of sym(S^-1). "
              "beta_hat > beta is the paper's condition for LSALSA's faster convergence.", "",
              f"![spectrum]({FIGURES['spectrum']})", ""]
    return "\n".join(lines)

"""Figures of a run directory, drawn only from stored results: the numbers from the tidy
records (:class:`~lsalsa.workflow.results_view.ResultsView`), the samples from eval/*.npy, the
titles from results.json's description of the run.

All figures use matplotlib's Agg backend through :class:`matplotlib.figure.Figure` (no global
pyplot state) and are written atomically.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ...io import atomic_path, load_npy, remove_stale_temporaries
from ..config import CLASSIC, methods_in
from ..results_view import ResultsView

STYLE = {"fista": {"color": "tab:blue", "marker": "s", "label": "FISTA"},
         "salsa": {"color": "tab:orange", "marker": "^", "label": "SALSA"},
         "lista": {"color": "tab:green", "marker": "D", "label": "LISTA"},
         "lsalsa": {"color": "black", "marker": "o", "label": "LSALSA"},
         "lsalsa-fixed": {"color": "tab:gray", "marker": "x",
                          "label": "LSALSA, fixed thresholds (paper)"},
         "lsalsa-sep": {"color": "tab:red", "marker": "*",
                        "label": "LSALSA, separation objective"},
         "lsalsa-pic": {"color": "tab:purple", "marker": "P",
                        "label": "LSALSA, separation objective, whole-picture mixtures"},
         # SALSA at the separation baseline's setting (shown in separation grids only).
         "salsa_best_psnr_any_alpha": {"color": "tab:orange", "marker": "v",
                                       "label": "SALSA, best PSNR"}}
# Column titles of the separation grid, where a long label would run into its neighbours.
SHORT = {"lsalsa-fixed": "LSALSA\nfixed thr.", "lsalsa-sep": "LSALSA\nseparation",
         "lsalsa-pic": "LSALSA\npictures",
         "salsa_best_psnr_any_alpha": "SALSA\nbest PSNR"}


def new_figure(width: float, height: float):
    """A figure (inches) on the Agg canvas, outside pyplot's global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def save_png(fig, path: Path, dpi: int, **options) -> Path:
    """``fig`` as a PNG at ``path``, written atomically (every figure of the report package)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, **options)
    return path


def _save(fig, path: Path) -> Path:
    return save_png(fig, path, 110, bbox_inches="tight")


def _series(view: ResultsView, method: str, metric: str) -> tuple[list[int], list[float]]:
    """``method``'s test ``metric`` over the depths, in increasing T."""
    curve = sorted(view.curve(method, metric).items())
    return [T for T, _ in curve], [value for _, value in curve]


def rmse_vs_T(results: dict, path: Path, view: ResultsView | None = None) -> Path:
    view = view or ResultsView.of(results)
    fig = new_figure(6.0, 4.2)
    ax = fig.add_subplot()
    for method in methods_in(results):
        style = STYLE[method]
        if method in CLASSIC:
            ax.plot(*_series(view, method, "dense_code_rmse"), color=style["color"], lw=1,
                    alpha=0.6)
        depths, values = _series(view, method, "code_rmse")
        ax.plot(depths, values, ls="-" if method not in CLASSIC else "none", **style)
    ref = view.value("lsalsa", 1, "code_rmse")
    if ref is not None:
        ax.axhline(ref, color="black", ls=":", lw=0.8, label="LSALSA at T = 1")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("T (iterations / layers)")
    ax.set_ylabel("mean code RMSE vs optimal codes (test)")
    ax.set_title(f"{results['name']} ({results['scale']}): code error vs T")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def rmse_vs_time(results: dict, path: Path, view: ResultsView | None = None) -> Path:
    view = view or ResultsView.of(results)
    fig = new_figure(6.0, 4.2)
    ax = fig.add_subplot()
    for method in methods_in(results):
        depths, values = _series(view, method, "code_rmse")
        _, seconds = _series(view, method, "seconds")
        ax.plot(seconds, values, **STYLE[method])
        for T, x, y in zip(depths, seconds, values, strict=True):
            ax.annotate(str(T), (x, y), fontsize=6, xytext=(2, 2), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    timing = results["timing"]
    ax.set_xlabel(f"seconds to encode the test set ({timing['device']}, "
                  f"{timing['threads']} thread(s), batch {timing['batch_size']})")
    ax.set_ylabel("mean code RMSE (test)")
    ax.set_title(f"{results['name']} ({results['scale']}): code error vs time (labels: T)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def sparsity_clouds(results: dict, run_dir: Path, path: Path, depths,
                    view: ResultsView | None = None) -> Path | None:
    view = view or ResultsView.of(results)
    depths = [T for T in depths if view.value("lsalsa", T, "code_rmse") is not None]
    if not depths:
        return None
    fig = new_figure(4.0 * len(depths), 3.8)
    for k, T in enumerate(depths):
        ax = fig.add_subplot(1, len(depths), k + 1)
        for method in methods_in(results):
            rmse = load_npy(run_dir / "eval" / f"rmse_{method}_T{T}.npy")
            sparsity = load_npy(run_dir / "eval" / f"sparsity_{method}_T{T}.npy")
            ax.scatter(sparsity, rmse, s=3, alpha=0.35, color=STYLE[method]["color"],
                       label=STYLE[method]["label"], rasterized=True)
        ax.set_yscale("log")
        ax.set_xlabel("sparsity (fraction of zeros)")
        if k == 0:
            ax.set_ylabel("per-sample code RMSE")
        ax.set_title(f"T = {T}")
        ax.grid(True, alpha=0.3)
        if k == len(depths) - 1:
            ax.legend(fontsize=7, markerscale=3)
    fig.suptitle(f"{results['name']} ({results['scale']}): sparsity vs error, test samples")
    return _save(fig, path)


def separation_grid(results: dict, run_dir: Path, path: Path, T: int,
                    methods=None) -> Path | None:
    """Rows: test samples; columns: mixture, truth (digit, natural), optimal codes' and each
    method's components ``A_i x_i`` at depth ``T`` (``methods``: those shown, default all)."""
    eval_dir = run_dir / "eval"
    files = {m: eval_dir / f"separation_{m}_T{T}.npy" for m in methods or methods_in(results)}
    if not all(f.is_file() for f in files.values()):
        return None
    mixture = load_npy(eval_dir / "separation_mixture.npy")
    columns = [("mixture", mixture, None), ("truth", load_npy(eval_dir /
                                                               "separation_truth.npy"), None),
               ("optimal", load_npy(eval_dir / "separation_optimal.npy"), None)]
    columns += [(SHORT.get(m, STYLE[m]["label"]), load_npy(files[m]), m) for m in files]
    side = math.isqrt(mixture.shape[1])
    n = mixture.shape[0]
    n_cols = 1 + 2 * (len(columns) - 1)
    fig = new_figure(1.1 * n_cols, 1.2 * n + 0.6)
    titles = []
    for name, array, _ in columns:
        titles += [name] if array.ndim == 2 else [f"{name}\ndigit", f"{name}\nnatural"]
    for r in range(n):
        images = []
        for _, array, _ in columns:
            images += [array[r]] if array.ndim == 2 else [array[r, 0], array[r, 1]]
        for c, image in enumerate(images):
            ax = fig.add_subplot(n, n_cols, r * n_cols + c + 1)
            ax.imshow(np.asarray(image).reshape(side, side), cmap="gray", vmin=0,
                      vmax=2 if c == 0 else 1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=7)
    fig.suptitle(f"{results['name']} ({results['scale']}): separations at T = {T}", fontsize=9)
    return _save(fig, path)


def make_figures(run_dir, results: dict | None = None,
                 records: list[dict] | None = None) -> dict[str, Path]:
    """All figures of a run from its stored results (``results.json`` and its tidy
    ``records``, unless the caller has them already); returns ``{name: path}``."""
    import json

    run_dir = Path(run_dir)
    if results is None:
        results = json.loads((run_dir / "results.json").read_text())
    config = results["config"]
    out = run_dir / "figures"
    remove_stale_temporaries(out)  # what killed runs left behind
    view = ResultsView.of(results) if records is None else ResultsView(records)
    figures = {"rmse_vs_T": rmse_vs_T(results, out / "rmse_vs_T.png", view),
               "rmse_vs_time": rmse_vs_time(results, out / "rmse_vs_time.png", view)}
    clouds = sparsity_clouds(results, run_dir, out / "sparsity_vs_rmse.png",
                             config["evaluation"]["sparsity_T"], view)
    if clouds is not None:
        figures["sparsity_vs_rmse"] = clouds
    if results["kind"] == "mca":
        for T in config["evaluation"]["separation_T"]:
            grid = separation_grid(results, run_dir, out / f"separation_T{T}.png", T)
            if grid is not None:
                figures[f"separation_T{T}"] = grid
    for atoms in sorted(out.glob("atoms_*.png")):
        figures[atoms.stem] = atoms
    return figures

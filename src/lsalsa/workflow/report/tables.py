"""The report's tables, each built from a stored ``results.json`` alone by a function of its
own (:func:`tables` lists them in the report's order); every number is :func:`~.render.fmt` of
the stored value, so a table can be checked against ``results.json`` mechanically. The numbers
are selections of the results' tidy records (:class:`~lsalsa.workflow.results_view.
ResultsView`); results.json gives the run's description:
its depths, methods, settings and training records."""

from __future__ import annotations

from ...core.training.search import LEARNED_METHODS, threshold_step
from ..config import CLASSIC, PSNR_BASELINES, methods_in
from ..results_view import ResultsView
from ..targets import dense_grid, grid_step, match_record
from .render import Table, fmt

NAMES = {"fista": "FISTA", "salsa": "SALSA", "lista": "LISTA", "lsalsa": "LSALSA",
         "lsalsa-fixed": "LSALSA (fixed thresholds)",
         "lsalsa-sep": "LSALSA (separation objective)",
         "lsalsa-pic": "LSALSA (separation objective, whole-picture mixtures)"}


def tables(results: dict, records: list[dict] | None = None) -> list[Table]:
    """Every table of the report, built from ``results`` alone (``records``: its tidy records,
    when already made), in the report's order."""
    view = ResultsView.of(results) if records is None else ResultsView(records)
    return [*_code_tables(results, view), _iterations_to_match(results, view),
            _time_to_match(results, view), *_classification_tables(results, view),
            *_psnr_baseline_tables(results, view), *_psnr_tables(results, view),
            _hyperparameters(results), *_training_tables(results, view)]


def _per_depth(results: dict, name: str, title: str, cell) -> Table:
    """A table with a row per method and a column per depth T: ``cell(method, T)``."""
    depths = results["depths"]
    return Table(name, title, ["method"] + [f"T={T}" for T in depths],
                 [[NAMES[m]] + [cell(m, T) for T in depths] for m in methods_in(results)])


def _selected(view: ResultsView, metric: str, **where):
    """A table's cell, ``cell(method, T)``: the record of ``metric`` there (None: none)."""
    return lambda m, T: view.value(m, T, metric, **where)


def _code_tables(results: dict, view: ResultsView) -> list[Table]:
    """The codes' RMSE, sparsity and encoding time per method and depth."""
    return [
        _per_depth(results, "rmse", "Mean code RMSE against the optimal codes (test set)",
                   _selected(view, "code_rmse")),
        _per_depth(results, "sparsity", "Mean sparsity (fraction of exact zeros; optimal codes: "
                   f"{fmt(view.value('exact', None, 'sparsity'))})",
                   _selected(view, "sparsity")),
        _per_depth(results, "time", "Seconds to encode the whole test set (median of repeats)",
                   _selected(view, "seconds")),
    ]


def _matched_depths(view: ResultsView) -> list[int]:
    """The depths of LSALSA that the classic methods were to match."""
    return view.distinct("T", metric="matched")


def _iterations_to_match(results: dict, view: ResultsView) -> Table:
    rows = []
    for ref in _matched_depths(view):
        for m in CLASSIC:
            T = match_record(view, m, ref)["iterations"]
            rows.append([ref, view.value("lsalsa", ref, "code_rmse"), NAMES[m],
                         _grid_note(view, m, T), T])
    # "grid" says whether the count is exact or an upper bound (the stored dense grid skipped
    # counts below it); the count itself stays the last column, a plain number in the CSV.
    return Table("iterations_to_match", "Iterations each classic method needs to reach "
                 f"LSALSA's RMSE (n/a: not within {results['dense_max']})",
                 ["LSALSA T", "LSALSA RMSE", "method", "grid", "iterations"], rows)


def _time_to_match(results: dict, view: ResultsView) -> Table:
    rows = []
    for ref in _matched_depths(view):
        for m in CLASSIC:
            row = match_record(view, m, ref)
            # Not reached: timed at the last count evaluated, a lower bound on the time.
            grid = (_grid_note(view, m, row["iterations"]) if row["iterations"] is not None
                    else f"lower bound (not reached; timed at {row['timed_at']})"
                    if row["timed_at"] is not None else "n/a")
            rows.append([ref, view.value("lsalsa", ref, "seconds"), NAMES[m], grid,
                         row["seconds"], row["time_ratio"]])
    return Table("time_to_match", "Time each classic method needs to reach LSALSA's RMSE "
                 "(at an upper-bound iteration count, an upper bound too)",
                 ["LSALSA T", "LSALSA seconds", "method", "grid", "seconds", "ratio"], rows)


def _classification_tables(results: dict, view: ResultsView) -> list[Table]:
    """One table per labelled task (none without labels)."""
    classification = results.get("classification") or {}
    return [_per_depth(results, f"classification_{task}",
                       f"Classification error ({task}) of the expert classifier trained on "
                       f"the optimal codes (its error on them: "
                       f"{fmt(view.value('exact', None, f'classification_error_{task}'))}; "
                       f"{info['n']} test items)",
                       _selected(view, f"classification_error_{task}"))
            for task, info in (classification.get("tasks") or {}).items()]


_PSNR_BASELINE_TITLES = {
    "codes_alphas": ("psnr_baseline", "the mu of best validation PSNR at the optimal codes' "
                     "alphas"),
    "any_alpha": ("psnr_baseline_any_alpha", "the (alpha, mu) of best validation PSNR over the "
                  "whole grid")}


def _psnr_baseline_tables(results: dict, view: ResultsView) -> list[Table]:
    """SALSA at its best-PSNR setting per T against every method (separation runs only)."""
    methods = methods_in(results)
    out = []
    for kind, key in PSNR_BASELINES.items():
        baseline = {T: view.record(key, T, "psnr_mean_db")
                    for T in sorted(view.curve(key, "psnr_mean_db"))}
        if not baseline:
            continue
        rows = [[T, "/".join(f"{a:g}" for a in b["setting"]["alpha"]), b["setting"]["mu"],
                 view.components(key, T, "psnr_db"), b["value"],
                 *[_mean(view.components(m, T, "psnr_db")) for m in methods]]
                for T, b in baseline.items()]
        name, which = _PSNR_BASELINE_TITLES[kind]
        out.append(Table(name, f"Mean PSNR (dB) over the components: SALSA at {which} (a "
                         "separation baseline) against every method",
                         ["T", "SALSA alpha", "SALSA mu", "SALSA PSNR per component",
                          "SALSA mean",
                          *[f"{NAMES[m]} mean" for m in methods]], rows))
    return out


def _mean(values: list[float] | None) -> float | None:
    return None if values is None else float(sum(values) / len(values))


def _psnr_tables(results: dict, view: ResultsView) -> list[Table]:
    """The PSNR of each separated component per method and depth (separation runs only)."""
    if not view.distinct("method", metric="psnr_db"):
        return []
    depths, components = results["depths"], range(len(results["block_sizes"]))
    cells = [_selected(view, "psnr_db", component=i) for i in components]
    rows = [[f"{NAMES[m]} {'digit' if i == 0 else 'natural'}"] + [cells[i](m, T) for T in depths]
            for m in methods_in(results) for i in components]
    optimal = view.components("exact", None, "psnr_db")
    return [Table("psnr", "PSNR (dB) of each separated component A_i x_i against the true "
                  f"component (optimal codes: {fmt(optimal)})",
                  ["method, component"] + [f"T={T}" for T in depths], rows)]


def _hyperparameters(results: dict) -> Table:
    hypers = [(m, T, results["methods"][m][str(T)]["hyper"])
              for m in methods_in(results) for T in results["depths"]]
    # The thresholds' step is recorded only away from its default (1), as a run searched it.
    steps = any("threshold_lr" in h for _, _, h in hypers if h)
    rows = [[NAMES[m], T, h.get("alpha"), h.get("mu"), h.get("lr"), h.get("lr_decay")]
            + ([_threshold_step(m, h)] if steps else []) for m, T, h in hypers]
    return Table("hyperparameters", "Selected hyperparameters (by validation RMSE; a learned "
                 "encoder starts from its classic algorithm's alpha and mu)",
                 ["method", "T", "alpha", "mu", "lr", "lr decay"]
                 + (["thresholds' step (x lr)"] if steps else []), rows)


def _threshold_step(method: str, hyper: dict):
    """A learned method's thresholds' step relative to lr: None where they are not learned."""
    if hyper.get("lr") is None or method not in LEARNED_METHODS:
        return None
    return threshold_step(method, hyper)


def _training_tables(results: dict, view: ResultsView) -> list[Table]:
    """The learned encoders' training, when the run recorded it."""
    training = results.get("training") or {}
    rows = [[NAMES[m], T, view.value(m, T, "training_start_error", split="val"),
             view.value(m, T, "training_kept_error", split="val"), t.get("best_epoch"),
             t.get("epochs"), t.get("stopped")]
            for m in methods_in(results) for T in results["depths"]
            if (t := training.get(f"{m}_T{T}")) is not None]
    if not rows:
        return []
    return [Table("training", "Training: validation RMSE at the start (the classic algorithm) "
                  "and of the returned epoch (the best, start included)",
                  ["method", "T", "start val RMSE", "val RMSE", "best epoch", "epochs",
                   "stopped"], rows)]


def _grid_note(view: ResultsView, method: str, T: int | None) -> str:
    """Whether an iteration count read from the stored dense grid is exact."""
    grid = dense_grid(view, method)
    if T is None or grid is None:
        return "n/a"
    step = grid_step(grid, T)
    return "exact" if step is None else f"upper bound (grid step {step})"

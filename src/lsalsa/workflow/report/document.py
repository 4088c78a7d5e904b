"""``report.md`` and ``report.html`` of a run directory, from stored results only; and
``results.jsonl``, the results as a tidy table (:mod:`lsalsa.workflow.results_table`).

Reads ``results.json``, ``eval/*.npy``, ``analysis/*/analysis.json``, ``steps/*.json`` and the
recorded config and provenance; draws the figures (:mod:`.figures`), builds the tables
(:mod:`.tables`, one function per table), writes them as CSV and Markdown under ``tables/``
and assembles one report from its sections (one function per section; figures linked by
relative path), written by :mod:`.render`. Every number in a table is :func:`fmt` of the
stored value, so the report can be checked against ``results.json`` mechanically.
"""

from __future__ import annotations

import json
from pathlib import Path

from ...core.training import DEFAULTS as TRAIN_DEFAULTS
from ...core.training.settings import PLATEAU_WAIT
from ...errors import InputError
from ...io import read_json_object, write_text
from ..config import DEFAULT_DEPTHS
from ..results_table import tidy_records, write_tidy
from ..targets import first_unevaluated
from .figures import make_figures
from .render import Table, fmt, html_page, markdown
from .tables import tables

# The fields of results.json that the report reads unconditionally (the pipeline's evaluate
# step writes them all), with the type of each container; the rest (dense, training, psnr,
# classification) older runs may lack, and the report reads them with .get.
REQUIRED = {"name": None, "scale": None, "dataset": None, "kind": None, "description": None,
            "stand_in": None, "data_label": None, "P_test": None, "M": None, "N": None,
            "seed": None, "dense_max": None, "alphas": list, "block_sizes": list,
            "depths": list, "targets": list, "methods": dict, "optimal": dict, "match": dict,
            "timing": dict, "config": dict, "provenance": dict}


def _load(run_dir: Path) -> dict:
    file = run_dir / "results.json"
    if not file.is_file():
        raise InputError(f"{run_dir} has no results.json (run `lsalsa experiment run` first)")
    # Checked before any figure or table is written: no half-written report.
    results = read_json_object(file, "the results of an experiment run")
    missing = [k for k in REQUIRED if k not in results]
    wrong = [k for k, kind in REQUIRED.items()
             if kind is not None and k in results and not isinstance(results[k], kind)]
    if missing or wrong:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"{k} is not a JSON {'object' if REQUIRED[k] is dict else 'list'}" for k in wrong])
        raise InputError(f"{file} is not the results of an experiment run "
                         f"({'; '.join(parts)})")
    return results


def write_report(run_dir, steps=()) -> list[Path]:
    """Write figures/, tables/, report.md and report.html into ``run_dir``; return the paths.

    ``steps``: the pipeline's step names in order (:data:`lsalsa.workflow.steps.STEPS`), whose
    markers' times the provenance lists (none when empty)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"run directory {run_dir} does not exist")
    results = _load(run_dir)
    # The same numbers as a tidy table beside results.json (which stays as it is).
    tidy = run_dir / "results.jsonl"
    records = tidy_records(results, str(results["name"]))
    write_tidy(tidy, records)
    figures = make_figures(run_dir, results, records)
    all_tables = tables(results, records)
    written = []
    for table in all_tables:
        for suffix, text in (("csv", table.csv()), ("md", table.markdown() + "\n")):
            path = run_dir / "tables" / f"{table.name}.{suffix}"
            write_text(path, text)
            written.append(path)
    blocks = _blocks(run_dir, results, figures, all_tables, steps)
    md_path, html_path = run_dir / "report.md", run_dir / "report.html"
    write_text(md_path, markdown(blocks))
    write_text(html_path, html_page(blocks, f"{results['name']} ({results['scale']})"))
    return [md_path, html_path, tidy, *figures.values(), *written]


def _blocks(run_dir: Path, results: dict, figures: dict, all_tables: list[Table],
            step_names) -> list:
    """The report as a list of blocks (:mod:`.render`), section by section."""
    by_name = {t.name: t for t in all_tables}
    return [*_introduction(run_dir, results), *_targets(results),
            *_code_error(results, figures, by_name), *_classification(results, by_name),
            *_separation(figures, by_name), ("table", by_name["hyperparameters"]),
            *_dictionaries(figures), *_analysis(run_dir, results["depths"]),
            *_provenance(run_dir, results, step_names)]


def _introduction(run_dir: Path, results: dict) -> list:
    """The title, the data, the depths, how the classic methods are evaluated, the training."""
    b: list = [("h", 1, f"Experiment {results['name']} ({results['scale']} scale)")]
    if results["description"]:
        b.append(("p", results["description"]))
    b.append(("p", _data_text(results)))
    if list(results["depths"]) != list(DEFAULT_DEPTHS):
        b.append(("p", f"Depths: T in {{{', '.join(map(str, results['depths']))}}}, a subset "
                       f"of the paper's {{{', '.join(map(str, DEFAULT_DEPTHS))}}}"
                       + (" (small scale)." if results["scale"] == "small" else ".")))
    where, caveat = _grid_text(results)
    b.append(("p", f"FISTA and SALSA are evaluated at {where}, each T with the (alpha, mu) "
                   "that gives the lowest validation RMSE over the same alpha grid the learned "
                   "methods search; the iterations to match are read from that dense curve"
                   f"{caveat}. Each learned encoder starts as its classic algorithm at that "
                   "algorithm's best setting for its depth (LISTA as ISTA, LSALSA as SALSA), "
                   "so at epoch 0 it is as good as that algorithm can be made on validation."))
    b.append(("p", training_text(results["config"]["search"],
                                 searched=(run_dir / "search").is_dir())))
    return b


def _data_text(results: dict) -> str:
    """The data set, its size and the optimal codes, in one sentence."""
    codes = results["config"]["codes"]
    return (f"Data: {results['dataset']} — {results['data_label']}"
            + (" **(offline stand-in)**" if results["stand_in"] else "")
            + f"; {results['P_test']} test signals, M = {results['M']}, N = {results['N']}"
            + (f" (blocks {results['block_sizes']})" if len(results["block_sizes"]) > 1 else "")
            + f"; optimal codes with alphas {results['alphas']} "
              f"({codes['mode']} mode, relative duality gap tol {codes['tol']:g}"
            + (f", SALSA mu {results['mu']:g}" if codes["mode"] == "paper"
               and len(results["block_sizes"]) > 1 else "") + ").")


def _targets(results: dict) -> list:
    b: list = [("h", 2, "The paper's targets")]
    if results["targets"]:
        b.append(("list", [f"**{t['status'].upper()}** — {t['text']}: {t['measured']}"
                           for t in results["targets"]]))
    else:
        b.append(("p", "No targets for this experiment."))
    return b


def _code_error(results: dict, figures: dict, by_name: dict) -> list:
    """The codes' error, sparsity and time, the iterations and time to match, the timing."""
    b: list = [("h", 2, "Code error")]
    b += [("img", f"figures/{figures[name].name}", name)
          for name in ("rmse_vs_T", "rmse_vs_time") if name in figures]
    b += [("table", by_name[name])
          for name in ("rmse", "sparsity", "time", "iterations_to_match", "time_to_match")]
    t = results["timing"]
    b.append(("p", f"Timing: {t['device']}, {t['dtype']}, batch {t['batch_size']}, "
                   f"{t['threads']} thread(s), {t['statistic']}, {t['repeats']} repeats. "
                   f"{t['classic_timing']}. On a shared machine the times are noisy; the "
                   "iteration counts are not."))
    if "sparsity_vs_rmse" in figures:
        b.append(("h", 2, "Sparsity versus error"))
        b.append(("img", "figures/sparsity_vs_rmse.png", "sparsity vs RMSE"))
    return b


def _classification(results: dict, by_name: dict) -> list:
    tasks = [n for n in by_name if n.startswith("classification_")]
    if not tasks:
        return [("h", 2, "Classification"),
                ("p", "Not available: this data set has no class labels.")]
    info = next(iter(results["classification"]["tasks"].values()))["classifier"]
    return [("h", 2, "Classification"),
            ("p", f"Expert classifier: {info['model']}, C = {info['C']:g}, "
                  f"projection: {info['projection'] or 'none'}, seed {info['seed']}. "
                  "Trained on the optimal codes of the test items, scored on each "
                  "method's codes (paper Sec. 6)."),
            *[("table", by_name[n]) for n in tasks]]


def _separation(figures: dict, by_name: dict) -> list:
    """The separated components' PSNR and figures (separation runs only)."""
    if "psnr" not in by_name:
        return []
    depths = sorted((n for n in figures if n.startswith("separation_T")),
                    key=lambda n: int(n[12:]))
    return [("h", 2, "Separation"), ("table", by_name["psnr"]),
            *[("img", f"figures/{figures[n].name}", n) for n in depths]]


def _dictionaries(figures: dict) -> list:
    return [("h", 2, "Dictionaries"),
            *[("img", f"figures/{figures[n].name}", n) for n in sorted(figures)
              if n.startswith("atoms_")]]


def _analysis(run_dir: Path, depths) -> list:
    """Theorem 1 and the curvature of the trained LSALSA encoders, when analysed."""
    rows = _analysis_rows(run_dir, depths)
    if not rows:
        return []
    return [("h", 2, "Analysis of the trained LSALSA encoders (Theorem 1, curvature)"),
            ("table", Table("analysis", "Per depth: largest relative gradient of L_hat at the "
                            "network's x-updates (Theorem 1) over layers and samples, its "
                            "largest rounding bound, the verdict, and the learned curvature (the "
                            "largest P and the smallest beta_hat over the layers; see "
                            "analysis/lsalsa_T*/analysis.md)",
                            ["T", "gradient of L_hat", "rounding bound", "Theorem 1",
                             "P rel. norm", "beta", "beta_hat", "S pos. def."], rows))]


def _theorem1_status(check: dict) -> str:
    if "holds" not in check:  # written before the check could fail: no verdict to report
        return "n/a (old analysis)"
    if check["holds"]:
        return "holds"
    if check["stationary"]:
        return "not a minimiser (sym(S^-1) indefinite)"
    if not check["symmetric"]:
        return "does not apply (S not symmetric)"
    return "does not hold"


def _analysis_rows(run_dir: Path, depths) -> list[list]:
    rows = []
    for T in depths:
        file = run_dir / "analysis" / f"lsalsa_T{T}" / "analysis.json"
        if not file.is_file():
            continue
        a = json.loads(file.read_text())
        check, curv = a["theorem1"], a["curvature"]
        # Older files hold the same gradient of L_hat as "symmetric_max", without a bound.
        residual = check.get("residual_max", check.get("symmetric_max"))
        bound = max(e["bound"] for e in check["layers"]) if "holds" in check else None
        rows.append([T, residual, bound, _theorem1_status(check),
                     curv["P_rel2"], curv["beta"], curv["beta_hat"],
                     curv.get("S_positive_definite")])
    return rows


def _provenance(run_dir: Path, results: dict, step_names) -> list:
    """The config, the versions, the steps' times and the command that reproduces the run."""
    c, p = results["config"], results["provenance"]
    steps = {}
    for step in step_names[:-1]:
        file = run_dir / "steps" / f"{step}.json"
        if file.is_file():
            steps[step] = json.loads(file.read_text())["seconds"]
    return [("h", 2, "Provenance"),
            ("list", [f"config: {c['origin']}, scale {results['scale']}, seed {results['seed']}",
                      f"lsalsa {p['lsalsa_version']}, git commit {p['git_commit']}, torch "
                      f"{p['torch_version']}, Python {p['python_version']}",
                      "step seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in steps.items()),
                      "reproduce: `lsalsa experiment run "
                      f"{c['origin'].removeprefix('shipped:')} --scale {results['scale']}`"])]


def training_text(s: dict, searched: bool = False) -> str:
    """The training settings, from the stored config only (no claim the run did not measure)."""
    optimizer = {"sgd": "vanilla SGD (as in the paper)",
                 "adam": "Adam (the paper uses SGD)"}[s["optimizer"]]
    lrs = s["lrs"] if isinstance(s["lrs"], list) else sorted(
        {v for grid in s["lrs"].values() for v in grid})
    weight = s.get("reconstruction_weight")
    loss = ("Eq. 15, plus each component's reconstruction error for MCA (the default)"
            if weight is None else f"Eq. 15 plus {weight:g} x each component's "
            "reconstruction error" if weight else "Eq. 15")
    default = [TRAIN_DEFAULTS["threshold_lr"]]
    steps = s.get("threshold_lrs") or default  # absent at its default
    if steps == default:  # the learning rate alone: the words of runs before the step's grid
        search = (f"the learning rate searched over {lrs} with {s['epochs']} epochs per trial"
                  if searched else f"learning rate {fmt(lrs)} (no search: one value)")
    else:
        knobs = [f"the learning rate over {lrs}" if len(lrs) > 1
                 else f"learning rate {fmt(lrs)}",
                 f"the learned thresholds' step (x the learning rate) over {steps}"
                 if len(steps) > 1 else
                 f"the learned thresholds' step {fmt(steps[0])} x the learning rate"]
        search = (f"searched: {', '.join(knobs)}, with {s['epochs']} epochs per trial"
                  if searched else f"{', '.join(knobs)} (no search: one value)")
    schedule = {"cosine": "a cosine schedule", "constant": "a constant step",
                "plateau": f"the step halved whenever validation stalls for {PLATEAU_WAIT} "
                           "epochs"}[
        s.get("schedule", TRAIN_DEFAULTS["schedule"])]
    return (f"Training: {optimizer} with per-tensor step scaling and {schedule}, {search}, "
            f"at most {s['final_epochs']} epochs for the final models (the best validation "
            f"epoch kept, the start included), batch {s['batch_size']}; loss: {loss}"
            + (f"; at most {s['max_train']} training signals (a seeded subset)"
               if s.get("max_train") else "")
            + ("; untied layers (one S per layer) for every learned method but the paper's "
               "fixed-threshold LSALSA, which stays tied" if s.get("untied") else "")
            + "; validation: the prepared val split (whole images or photographs held out).")


def _grid_text(results: dict) -> tuple[str, str]:
    """The stored dense grid in words (which iteration counts were evaluated), and the caveat
    it implies for the iterations to match."""
    grids = [d["T"] for d in (results.get("dense") or {}).values()]
    top = results["dense_max"]
    if not grids:
        return f"a dense list of T up to {top} iterations", ""
    grid = sorted({int(t) for g in grids for t in g})
    exact_to = first_unevaluated(grid) - 1
    if exact_to >= top:
        return f"every T from 1 to {top} iterations", ""
    rest = [t for t in grid if t > exact_to]
    return (f"every T from 1 to {exact_to}, then T in {{{', '.join(map(str, rest))}}}",
            f"; a count above {exact_to} is therefore only an upper bound (marked with its "
            "grid step)")

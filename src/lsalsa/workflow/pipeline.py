"""Run one experiment of Section 6 end to end into a run directory, resumably.

Steps (each writes its outputs, then ``steps/<step>.json``; a rerun skips finished steps)::

    data          lsalsa.workflow.data.prepare                     -> data/<dataset>/
    dictionaries  lsalsa.core.dictionary.learn_dictionary       -> dictionaries/, figures/atoms_*.png
    codes         lsalsa.core.codes.compute_codes (every split) -> codes/
    classic       FISTA / SALSA: grid per T on validation, dense T curve on test; ISTA and
                  SALSA settings that start LISTA and LSALSA per T -> classic.json
    search        lsalsa.core.training.search over the learning rates (only when the grid has more
                  than one; each encoder starts from its classic setting) -> search/<method>/
    train         lsalsa.core.training.train per method and T   -> models/<method>_T<T>/
    evaluate      codes of the test set for every method and T, metrics, timing, classifier
                                                            -> eval/*.npy, results.json
    analysis      lsalsa.core.theory.analyze per LSALSA model -> analysis/lsalsa_T<T>/
    report        figures, tables, report.md / report.html (lsalsa.workflow.report.document)

``config.json`` (the resolved configuration), ``provenance.json`` and ``seed`` are recorded at
the start; a run directory holding another configuration is refused.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..core import metrics
from ..core.encoders import build_encoder, components, load_encoder
from ..core.problem import make_problem
from ..core.training import DEFAULTS as TRAIN_DEFAULTS
from ..core.training import best_classic
from ..core.training.search import LEARNED_METHODS, classic_settings, selected_curves
from ..errors import InputError
from ..io import load_npy, save_npy, write_json
from ..version import provenance
from .code_sets import compute_codes_with_progress, load_codes, save_codes
from .config import CLASSIC, PSNR_BASELINES, alpha_grid, dense_depths, load_config
from .data import load_prepared, prepare
from .data.prepared import read_meta
from .dictionaries import learn_with_checkpoints, save_dictionary
from .progress import Progress
from .report.atoms import plot_atoms
from .search import search
from .training import train_in_dir

STEPS = ("data", "dictionaries", "codes", "classic", "search", "train", "evaluate", "analysis",
         "report")


class Run:
    """A run directory: its configuration, step markers and shared loaders."""

    def __init__(self, run_dir, config: dict, *, data_dir=None, progress: bool = True,
                 log=None):
        self.dir = Path(run_dir)
        self.config = config
        self.data_dir = data_dir
        self.progress = progress
        self.log = log or (lambda message: print(f"[lsalsa experiment] {message}",
                                                 file=sys.stderr, flush=True))
        wanted = config["device"]
        if wanted == "auto":
            wanted = "cuda" if torch.cuda.is_available() else "cpu"
        if wanted == "cuda" and not torch.cuda.is_available():
            raise InputError("the config asks for device cuda, but no CUDA device is available")
        self.device = torch.device(wanted)
        self._cache: dict = {}

    # -- bookkeeping -------------------------------------------------------------------------
    def marker(self, step: str) -> Path:
        return self.dir / "steps" / f"{step}.json"

    def done(self, step: str) -> bool:
        return self.marker(step).is_file()

    def mark(self, step: str, seconds: float, **info) -> None:
        write_json(self.marker(step), {"step": step, "seconds": seconds,
                                       "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                       **info})

    def start(self) -> None:
        """Record config, seed and provenance; refuse a directory of another configuration."""
        if self.dir.exists() and not self.dir.is_dir():
            raise InputError(f"run directory {self.dir} exists and is not a directory")
        saved_file = self.dir / "config.json"
        if saved_file.is_file():
            try:
                saved = json.loads(saved_file.read_text())
            except (OSError, ValueError) as exc:
                raise InputError(f"cannot read {saved_file}: {exc}") from exc
            mine = json.loads(json.dumps(self.config))
            differ = sorted(k for k in set(saved) | set(mine)
                            if k != "origin" and saved.get(k) != mine.get(k))
            if differ:
                raise InputError(f"run directory {self.dir} holds another configuration "
                                 f"(differs in {', '.join(differ)}); choose another --run-dir")
        else:
            write_json(saved_file, self.config)
            write_json(self.dir / "provenance.json", provenance())
            write_json(self.dir / "seed.json", {"seed": self.config["seed"]})

    # -- shared loaders ----------------------------------------------------------------------
    @property
    def dataset(self):
        if "dataset" not in self._cache:
            info = json.loads(self.marker("data").read_text())
            self._cache["dataset"] = load_prepared(self.dir / info["path"])
        return self._cache["dataset"]

    @property
    def codeset(self):
        if "codes" not in self._cache:
            self._cache["codes"] = load_codes(self.dir / "codes")
        return self._cache["codes"]

    def split_arrays(self, split: str) -> dict:
        key = f"split:{split}"
        if key not in self._cache:
            arrays = self.dataset.split(split)
            self._cache[key] = {k: np.array(v) for k, v in arrays.items()}
        return self._cache[key]

    def fit_val(self) -> dict:
        """Training rows (a seeded subset of ``search.max_train`` rows, if set) and the
        validation rows: the prepared ``val`` split (whole images or photographs held out),
        or, for a data set without one, the last training images."""
        if "fit_val" not in self._cache:
            train_split = self.split_arrays("train")
            Y = train_split["signals"].astype(np.float32)
            X = np.array(self.codeset.codes("train"), dtype=np.float32)
            if "val" in self.dataset.splits and "val" in self.codeset.splits:
                Y_val = self.split_arrays("val")["signals"].astype(np.float32)
                X_val = np.array(self.codeset.codes("val"), dtype=np.float32)
            else:
                image = train_split["image_index"]
                n_images = int(image.max()) + 1
                n_val = max(1, round(self.config["search"]["val_fraction"] * n_images))
                if n_val >= n_images:
                    raise InputError(f"{n_images} training images are too few to hold out "
                                     "validation images")
                val = image >= n_images - n_val
                Y, X, Y_val, X_val = Y[~val], X[~val], Y[val], X[val]
            cap = self.config["search"]["max_train"]
            if cap is not None and cap < len(Y):
                rng = np.random.default_rng([self.config["seed"], 31])
                rows = np.sort(rng.choice(len(Y), cap, replace=False))
                Y, X = Y[rows], X[rows]
            self._cache["fit_val"] = {"Y": Y, "X": X, "Y_val": Y_val, "X_val": X_val}
        return self._cache["fit_val"]

    def blocks(self) -> list[np.ndarray]:
        return [np.asarray(d, dtype=np.float32) for d in self.codeset.dictionaries]

    def problem(self, alphas) -> object:
        tensors = [torch.from_numpy(d).to(self.device) for d in self.blocks()]
        return make_problem(tensors, alphas)[0]


# -- the steps ------------------------------------------------------------------------------------

def step_data(run: Run) -> dict:
    c = run.config
    path = prepare(c["dataset"], root=run.dir / "data", data_dir=run.data_dir, seed=c["seed"],
                   limit_images=c["prepare"]["limit_images"], progress=run.progress)
    meta = read_meta(path / "meta.json")
    return {"path": str(path.relative_to(run.dir)), "stand_in": meta.get("stand_in"),
            "label": meta.get("label"), "counts": meta.get("counts")}


def step_dictionaries(run: Run) -> dict:
    c, d = run.config, run.config["dictionary"]
    train_split = run.dataset.split("train")
    sources = [train_split["signals"]] if c["kind"] == "sc" else [
        train_split["component0"], train_split["component1"]]
    names = ["patches"] if c["kind"] == "sc" else ["digits", "natural"]
    side = run.dataset.meta["patch_shape"]
    out = run.dir / "dictionaries"
    info = []
    for i, (signals, name) in enumerate(zip(sources, names, strict=True)):
        target = out / f"dictionary_{i}.npy"
        if not (target.is_file() and target.with_suffix(".json").is_file()):
            rows = np.arange(signals.shape[0])
            if d["max_signals"] is not None and d["max_signals"] < len(rows):
                rng = np.random.default_rng([c["seed"], 21, i])
                rows = np.sort(rng.choice(len(rows), d["max_signals"], replace=False))
            data = np.array(signals[rows], dtype=np.float32)
            run.log(f"dictionary {i} ({name}): {d['atoms'][i]} atoms on {len(rows)} signals")
            result = learn_with_checkpoints(
                data, d["atoms"][i], d["alpha"][i], epochs=d["epochs"],
                batch_size=d["batch_size"], lr=d["lr"], seed=c["seed"] + i,
                n_iter_codes=d["n_iter_codes"], checkpoint_dir=out / f"checkpoint_{i}",
                progress=Progress(quiet=not run.progress), device=run.device)
            save_dictionary(target, result, extra={"component": name, "signals": len(rows)})
        A = load_npy(target)
        plot_atoms(A, run.dir / "figures" / f"atoms_{i}.png", tuple(side),
                   title=f"{c['name']}: dictionary {i} ({name}), {A.shape[1]} atoms")
        info.append({"component": name, "file": str(target.relative_to(run.dir)),
                     "shape": list(A.shape), "figure": f"figures/atoms_{i}.png"})
    return {"dictionaries": info}


def step_codes(run: Run) -> dict:
    c = run.config
    blocks = [load_npy(run.dir / "dictionaries" / f"dictionary_{i}.npy")
              for i in range(len(c["alphas"]))]
    codes, stats = {}, {}
    for split in run.dataset.splits:
        codes[split], stats[split] = compute_codes_with_progress(
            run.dataset.signals(split), blocks, c["alphas"], mode=c["codes"]["mode"],
            tol=c["codes"]["tol"], progress=Progress(quiet=not run.progress), mu=c["mu"])
        run.log(f"optimal codes {split}: {codes[split].shape}, sparsity "
                f"{float((codes[split] == 0).mean()):.3f}")
    meta = run.dataset.meta
    save_codes(run.dir / "codes", codes, blocks, c["alphas"], stats=stats,
               data={"path": str(run.dataset.path), "name": meta["name"],
                     "stand_in": meta.get("stand_in"), "label": meta.get("label")},
               seed=c["seed"], overwrite=True)
    return {"gap": {s: stats[s]["gap"] for s in stats},
            "sparsity": {s: float((codes[s] == 0).mean()) for s in codes}}


def lr_grid(config: dict, method: str) -> list[float]:
    """``search.lrs``: one list for every learned method, or one list per method."""
    lrs = config["search"]["lrs"]
    return list(lrs.get(method, [TRAIN_DEFAULTS["lr"]]) if isinstance(lrs, dict) else lrs)


def train_options(config: dict) -> dict:
    """The options of :func:`lsalsa.core.training.train` an experiment sets (search and final)."""
    s = config["search"]
    return {key: s[key] for key in ("optimizer", "batch_size", "rel_tol", "patience",
                                    "reconstruction_weight", "anchor_decay")}


def step_classic(run: Run) -> dict:
    """FISTA and SALSA: select (alpha, mu) per T on validation over the search grid, for every
    T of the dense list, then the test curve with those settings. Also the settings LISTA
    (ISTA's) and LSALSA (SALSA's) start from at each learned depth, and for MCA the SALSA
    settings with the best validation PSNR (the separation baselines): the mu at the optimal
    codes' alphas, and the (alpha, mu) of the whole grid."""
    c = run.config
    fv = run.fit_val()
    dense = dense_depths(c)
    Y_test = torch.from_numpy(run.split_arrays("test")["signals"].astype(np.float32)).to(
        run.device)
    X_test = torch.from_numpy(np.array(run.codeset.codes("test"))).to(run.device)
    blocks = [torch.from_numpy(d).to(run.device) for d in run.blocks()]
    out = {"dense_depths": dense}
    for method in CLASSIC:
        settings = classic_settings(method, alpha_grid(c), c["search"]["mus"])
        curve = selected_curves((fv["Y_val"], fv["X_val"]), (Y_test, X_test), blocks, method,
                                dense, settings)
        out[method] = {"T": dense, "val_rmse": curve["val_rmse"].tolist(),
                       "rmse_mean": curve["rmse"].tolist(),
                       "sparsity_mean": curve["sparsity"].tolist(),
                       "hyper": [settings[k] for k in curve["choice"].tolist()],
                       "grid": settings}
        run.log(f"{method}: dense curve over {len(dense)} depths, {len(settings)} settings")
    # ISTA has no curve of its own in the report: it is where LISTA starts.
    ista = best_classic(fv["Y_val"], fv["X_val"], blocks, "ista", c["depths"], alpha_grid(c))
    out["starts"] = {"ista": {str(T): v for T, v in ista.items()},
                     "salsa": {str(T): {**out["salsa"]["hyper"][dense.index(T)],
                                        "val_rmse": out["salsa"]["val_rmse"][dense.index(T)]}
                               for T in c["depths"]}}
    if c["kind"] == "mca" and "val" in run.dataset.splits:
        val = run.split_arrays("val")
        signals = val["signals"].astype(np.float32)
        truth = [val[f"component{i}"] for i in range(len(blocks))]
        grids = {"codes_alphas": classic_settings("salsa", [c["alphas"]], c["search"]["mus"]),
                 "any_alpha": out["salsa"]["grid"]}
        for kind, grid in grids.items():
            chosen = metrics.salsa_by_psnr(signals, truth, blocks, grid, c["depths"])
            out[PSNR_BASELINES[kind]] = {str(T): v for T, v in chosen.items()}
    write_json(run.dir / "classic.json", out)
    return {"file": "classic.json"}


def _starts(run: Run) -> dict[tuple[str, int], dict]:
    classic = json.loads((run.dir / "classic.json").read_text())
    return {(method, int(T)): v for method, by_T in classic["starts"].items()
            for T, v in by_T.items()}


def step_search(run: Run) -> dict:
    """The learning-rate search of each learned method per T (each encoder starts from its
    classic algorithm's best setting); skipped for a method with a single setting."""
    c, s = run.config, run.config["search"]
    trials = 0
    for method in s["learned"]:
        if len(lr_grid(c, method)) * len(s["lr_decays"]) == 1:
            continue
        fv = run.fit_val()
        result = search(fv["Y"], fv["X"], fv["Y_val"], fv["X_val"], run.blocks(),
                        depths=c["depths"], alphas=alpha_grid(c), methods=(method,),
                        mus=s["mus"], lrs=lr_grid(c, method), lr_decays=s["lr_decays"],
                        epochs=s["epochs"], train_options=train_options(c),
                        starts=_starts(run), seed=c["seed"], device=run.device,
                        run_dir=run.dir / "search" / method, progress=run.progress)
        trials += len(result.rows)
    return {"trials": trials}


def _learned_setting(run: Run, method: str, T: int, starts) -> dict:
    """Start (alpha, mu) and training knobs (lr, decay) of a learned method at depth T."""
    c, s = run.config, run.config["search"]
    kind, _, classic = LEARNED_METHODS[method]
    start = starts[(classic, T)]
    row = {"lr": lr_grid(c, method)[0], "lr_decay": s["lr_decays"][0], "val_rmse": None}
    best = run.dir / "search" / method / "best.json"
    if best.is_file():
        row = next(r for r in json.loads(best.read_text()) if int(r["T"]) == T)
    return {"alpha": start["alpha"], "mu": start["mu"] if kind == "lsalsa" else None,
            "lr": row["lr"], "lr_decay": row["lr_decay"], "search_val_rmse": row["val_rmse"],
            "start_val_rmse": start["val_rmse"]}


def model_path(run: Run, method: str, T: int) -> Path:
    """The trained model: the training run's own file (written atomically by the trainer)."""
    return run.dir / "models" / f"{method}_T{T}" / "run" / "model.safetensors"


def step_train(run: Run) -> dict:
    c, s = run.config, run.config["search"]
    fv = run.fit_val()
    starts = _starts(run)
    trained = {}
    for method in s["learned"]:
        kind, learn_thresholds, _ = LEARNED_METHODS[method]
        for T in c["depths"]:
            folder = run.dir / "models" / f"{method}_T{T}"
            done = folder / "done.json"
            if done.is_file():
                trained[f"{method}_T{T}"] = json.loads(done.read_text())
                continue
            hyper = _learned_setting(run, method, T, starts)
            encoder = build_encoder(kind, run.blocks(), hyper["alpha"], T, hyper["mu"],
                                    learn_thresholds=learn_thresholds).to(run.device)
            began = time.perf_counter()
            result = train_in_dir(folder / "run", encoder, fv["Y"], fv["X"],
                                  val_signals=fv["Y_val"], val_targets=fv["X_val"],
                                  lr=hyper["lr"], lr_decay=hyper["lr_decay"],
                                  max_epochs=s["final_epochs"], seed=c["seed"], resume=True,
                                  progress=run.progress, **train_options(c),
                                  data_info={"experiment": c["name"], "scale": c["scale"]})
            # Training keeps the best validation epoch, so even a diverged run holds a model
            # no worse than its start; its stop reason is recorded, not hidden.
            info = {**result.summary(), "hyper": hyper,
                    "seconds": time.perf_counter() - began}
            write_json(done, info)
            trained[f"{method}_T{T}"] = info
            run.log(f"trained {method} T={T}: val RMSE {result.initial_val_rmse:.4g} -> "
                    f"{result.val_rmse:.4g} ({result.epochs} epochs, best {result.best_epoch}, "
                    f"{result.stopped})")
    return {"models": sorted(trained)}


def step_evaluate(run: Run) -> dict:
    c, e = run.config, run.config["evaluation"]
    test = run.split_arrays("test")
    Y_np = test["signals"].astype(np.float32)
    Y = torch.from_numpy(Y_np).to(run.device)
    X_opt = np.array(run.codeset.codes("test"), dtype=np.float32)
    classic = json.loads((run.dir / "classic.json").read_text())
    dense = classic["dense_depths"]
    sync = torch.cuda.synchronize if run.device.type == "cuda" else None
    batch = e["batch_size"]

    def timed(encode) -> float:
        # Every method is timed with the same thread count (evaluation.threads, e.g. 1 on a
        # shared CPU, where a descheduled OpenMP worker would stall a parallel product).
        with metrics.torch_threads(e["threads"]):
            return metrics.time_encode(encode, e["time_repeats"], sync)

    blocks = run.blocks()
    problem = run.problem(c["alphas"])  # the components A_i x_i of any codes
    sizes = [b.shape[1] for b in blocks]
    eval_dir = run.dir / "eval"
    D = len(blocks)

    def hyper_at(method: str, T: int) -> dict:
        return classic[method]["hyper"][dense.index(T)]

    def classic_encoder(method: str, T: int):
        """A callable encoding the test set with the classic method's selected setting."""
        return metrics.classic_encoder(method, blocks, hyper_at(method, T), T, Y, batch)

    def learned_encoder(method: str, T: int):
        enc = load_encoder(model_path(run, method, T), device=run.device)
        return lambda: enc.encode(Y, batch_size=batch)

    # The expert classifiers: trained on the optimal codes of the test images.
    labels = test.get("labels")
    tasks = {}
    if labels is not None:
        if c["kind"] == "sc":
            tasks["classes"] = {"labels": labels,
                                "features": lambda X: metrics.image_features(
                                    X, test["image_index"])}
        else:
            tasks["digits"] = {"labels": labels, "features": lambda X: X[:, :sizes[0]]}
    if c["kind"] == "mca" and "labels_component1" in test:
        tasks["natural"] = {"labels": test["labels_component1"],
                            "features": lambda X: X[:, sizes[0]:]}
    k = c["classification"]
    classification = {"tasks": {}}
    for name, task in tasks.items():
        if len(np.unique(task["labels"])) < 2:
            continue
        clf = metrics.ExpertClassifier(k["projection_dim"], k["C"], k["max_iter"], c["seed"])
        task["clf"] = clf
        classification["tasks"][name] = {
            "optimal_error": clf.fit(task["features"](X_opt), task["labels"]),
            "n": len(task["labels"]), "classifier": clf.describe(), "errors": {}}
    truth = [test[f"component{i}"] for i in range(D)] if c["kind"] == "mca" else None
    n_show = min(e["separation_samples"], Y_np.shape[0])
    if truth is not None:
        save_npy(eval_dir / "separation_mixture.npy", Y_np[:n_show])
        save_npy(eval_dir / "separation_truth.npy", np.stack([t[:n_show] for t in truth], 1))

    evaluated = [*CLASSIC, *c["search"]["learned"]]
    methods: dict = {m: {} for m in evaluated}
    psnr_table: dict = {m: {} for m in evaluated}
    timers = {}
    for method in evaluated:
        for T in c["depths"]:
            encode = (classic_encoder if method in CLASSIC else learned_encoder)(method, T)
            codes = encode()
            X = codes.detach().cpu().numpy() if isinstance(codes, torch.Tensor) else codes
            rmse = metrics.rmse_per_sample(X, X_opt)
            sparsity = metrics.sparsity_per_sample(X)
            save_npy(eval_dir / f"rmse_{method}_T{T}.npy", rmse)
            save_npy(eval_dir / f"sparsity_{method}_T{T}.npy", sparsity)
            seconds = timed(encode)
            timers[(method, T)] = seconds
            hyper = hyper_at(method, T) if method in CLASSIC else json.loads(
                (run.dir / "models" / f"{method}_T{T}" / "done.json").read_text())["hyper"]
            methods[method][str(T)] = {
                "rmse_mean": float(rmse.mean()), "rmse_median": float(np.median(rmse)),
                "sparsity_mean": float(sparsity.mean()), "seconds": seconds, "hyper": hyper}
            for name, task in tasks.items():
                if "clf" in task:
                    err = task["clf"].error(task["features"](X), task["labels"])
                    classification["tasks"][name]["errors"].setdefault(method, {})[str(T)] = err
            if truth is not None:
                parts = components(problem, X)
                psnr_table[method][str(T)] = [metrics.psnr(p, t)
                                              for p, t in zip(parts, truth, strict=True)]
                if T in e["separation_T"]:
                    save_npy(eval_dir / f"separation_{method}_T{T}.npy",
                             np.stack([p[:n_show] for p in parts], 1))
            run.log(f"evaluated {method} T={T}: RMSE {rmse.mean():.4g}, sparsity "
                    f"{sparsity.mean():.3f}, {seconds * 1e3:.3g} ms")

    # Iterations and time each classic method needs to match LSALSA at the reference depths.
    match = {}
    for ref in e["match_reference_T"]:
        if ref not in c["depths"]:
            continue
        target = methods["lsalsa"][str(ref)]
        entry = {"lsalsa_rmse": target["rmse_mean"], "lsalsa_seconds": target["seconds"]}
        for method in CLASSIC:
            T = metrics.iterations_to_match(dense, classic[method]["rmse_mean"],
                                            target["rmse_mean"])
            # Not reached: timed at the last count evaluated, a lower bound on the time.
            timed_at = max(dense) if T is None else T
            seconds = timers.get((method, timed_at))
            if seconds is None:
                seconds = timed(classic_encoder(method, timed_at))
                timers[(method, timed_at)] = seconds
            entry[method] = {"iterations": T, "timed_at": timed_at, "seconds": seconds,
                             "time_ratio": seconds / target["seconds"]}
        match[str(ref)] = entry

    optimal = {"sparsity_mean": float(metrics.sparsity_per_sample(X_opt).mean()),
               "gap": run.codeset.meta["gap"]}
    if truth is not None:
        optimal["psnr"] = [metrics.psnr(p, t) for p, t in
                           zip(components(problem, X_opt), truth, strict=True)]
        save_npy(eval_dir / "separation_optimal.npy",
                 np.stack([p[:n_show] for p in components(problem, X_opt[:n_show])], 1))
        # The separation baselines: SALSA at the settings of best validation PSNR.
        for stored in PSNR_BASELINES.values():
            baseline = {}
            for T, setting in classic.get(stored, {}).items():
                codes = metrics.classic_encoder("salsa", blocks, setting, int(T), Y, batch)()
                parts = components(problem, codes.cpu().numpy())
                psnr = [metrics.psnr(p, t) for p, t in zip(parts, truth, strict=True)]
                baseline[T] = {**setting, "psnr": psnr, "psnr_mean": float(np.mean(psnr))}
            optimal[stored] = baseline
    meta = run.dataset.meta
    results = {
        "name": c["name"], "scale": c["scale"], "dataset": c["dataset"], "kind": c["kind"],
        "description": c["description"],
        "stand_in": meta.get("stand_in"), "data_label": meta.get("label"),
        "counts": meta.get("counts"), "P_test": int(Y_np.shape[0]),
        "M": int(Y_np.shape[1]), "N": int(sum(sizes)), "block_sizes": sizes,
        "alphas": c["alphas"], "mu": c["mu"], "depths": c["depths"],
        "dense_max": c["dense_max"], "seed": c["seed"],
        "methods": methods,
        "dense": {m: {k: classic[m][k] for k in ("T", "rmse_mean", "sparsity_mean", "hyper")}
                  for m in CLASSIC},
        "learned": list(c["search"]["learned"]),
        "optimal": optimal, "match": match,
        "classification": classification if classification["tasks"] else None,
        "psnr": {**psnr_table, "optimal": optimal["psnr"]} if truth is not None else None,
        "timing": {"device": str(run.device), "dtype": "float32", "batch_size": batch,
                   "threads": e["threads"] or torch.get_num_threads(), "repeats": e["time_repeats"],
                   "statistic": "median after one warm-up, whole test set",
                   "classic_timing": "SALSA: an untrained LSALSA (identical to SALSA(T), same "
                                     "code path); FISTA: lsalsa's FISTA loop run in place; "
                                     "operators formed once outside the timed region"},
        "arrays": {"rmse": "eval/rmse_{method}_T{T}.npy",
                   "sparsity": "eval/sparsity_{method}_T{T}.npy"},
        "config": c, "provenance": provenance(),
    }
    results["training"] = {f"{m}_T{T}": json.loads(
        (run.dir / "models" / f"{m}_T{T}" / "done.json").read_text())
        for m in c["search"]["learned"] for T in c["depths"]}
    results["targets"] = metrics.evaluate_targets(c["targets"], results)
    write_json(run.dir / "results.json", results)
    return {"file": "results.json"}


def step_analysis(run: Run) -> dict:
    from .analysis import analyze

    c = run.config
    Y = run.split_arrays("test")["signals"].astype(np.float64)
    summary = {}
    for T in c["depths"]:
        out = run.dir / "analysis" / f"lsalsa_T{T}"
        if not (out / "analysis.json").is_file():
            analyze(model_path(run, "lsalsa", T), Y, out,
                    n_samples=c["evaluation"]["analysis_samples"], seed=c["seed"],
                    source=f"{c['dataset']} test signals")
        summary[str(T)] = str(out.relative_to(run.dir))
    return {"analysis": summary}


def step_report(run: Run) -> dict:
    from .report.document import write_report

    paths = write_report(run.dir)
    return {"files": [str(p.relative_to(run.dir)) for p in paths]}


STEP_FUNCTIONS = {"data": step_data, "dictionaries": step_dictionaries, "codes": step_codes,
                  "search": step_search, "classic": step_classic, "train": step_train,
                  "evaluate": step_evaluate, "analysis": step_analysis, "report": step_report}


def run_experiment(config_name, run_dir, *, scale: str = "full", data_dir=None,
                   progress: bool = True, log=None) -> Path:
    """Run (or resume) an experiment; return the run directory.

    Parameters
    ----------
    config_name : a shipped configuration name (``lsalsa experiment list``) or a JSON path.
    run_dir : the run directory (created; a rerun reuses finished steps).
    scale : "small" or "full" (the configuration's ``scales`` overrides).
    data_dir : folder with canonical raw data (passed to :func:`lsalsa.workflow.data.prepare`).
    progress : tqdm bars on a terminal.
    log : callable taking one line of progress text (default: print to stderr).
    """
    config = load_config(config_name, scale)
    run = Run(run_dir, config, data_dir=data_dir, progress=progress, log=log)
    run.start()
    # The run's thread count and seed hold inside it only; the caller's are restored after.
    with metrics.torch_threads(config["threads"]), torch.random.fork_rng():
        torch.manual_seed(config["seed"])
        for step in STEPS:
            # A later step's outputs depend on the earlier ones: the report is always rewritten.
            if run.done(step) and step != "report":
                run.log(f"step {step}: done before, reused")
                continue
            run.log(f"step {step} ...")
            began = time.perf_counter()
            info = STEP_FUNCTIONS[step](run)
            seconds = time.perf_counter() - began
            run.mark(step, seconds, **info)
            run.log(f"step {step} finished in {seconds:.1f} s")
    return run.dir

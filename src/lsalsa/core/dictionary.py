"""Dictionary learning (paper Eq. 5; Eq. 8 per clean component for MCA) and atom pictures.

Mini-batch SGD on ``L(A) = 1/P sum_p E_A(x*_p; y_p)`` with unit-norm columns. For each batch
the codes come from FISTA (:func:`lsalsa.core.solvers.classic.run_iterations`), warm-started from
the codes the same samples had the last time they were seen; with the codes held fixed the
gradient of the batch objective is ``-R^T X / B`` with the residual ``R = Y - X A^T`` (the l1
term does not depend on ``A``). After every step each column is projected back to unit norm.
"""

from __future__ import annotations

import hashlib
import math
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..checks import is_integer as _is_int
from ..checks import is_number as _is_number
from ..errors import InputError
from ..io import (
    atomic_path,
    load_npy,
    read_json_object,
    remove_stale_temporaries,
    save_npy,
    write_json,
)
from ._arrays import as_real, check_signal_array
from .objective import _objective
from .problem import make_problem
from .solvers.classic import run_iterations

CHECKPOINT_STATE = "state.json"
DEFAULT_CACHE_BYTES = 1 << 30  # keep a per-sample code cache up to 1 GiB


@dataclass
class DictionaryResult:
    """What :func:`learn_dictionary` returns.

    Attributes
    ----------
    dictionary : ndarray (M, n_atoms) float32, unit-norm columns.
    history : list of float
        Mean objective ``E`` over each epoch's batches (codes after FISTA, before the step).
    epochs : int
        Epochs run in total (including any run before a resume).
    converged : bool
        Whether the relative change of the epoch objective fell below ``tol``.
    config : dict
        The settings used (recorded with the dictionary).
    """

    dictionary: np.ndarray
    history: list[float] = field(default_factory=list)
    epochs: int = 0
    converged: bool = False
    config: dict = field(default_factory=dict)


def _check_positive(value, name: str, integer: bool = False):
    if integer:
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise InputError(f"{name} must be an integer >= 1, got {value!r}")
        return int(value)
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{name} must be a positive number, got {value}")
    return value


def _rows(signals, index: np.ndarray) -> np.ndarray:
    """Gather rows (sorted, for memmap locality) as float32; check they are finite."""
    batch = np.asarray(signals[np.sort(index)], dtype=np.float32)
    if not np.isfinite(batch).all():
        raise InputError("signals contain NaN or Inf")
    return batch


def normalize_columns(A: torch.Tensor) -> torch.Tensor:
    """Project every column onto the unit sphere (a zero column becomes the first unit vector,
    so the result is always feasible)."""
    norms = torch.linalg.vector_norm(A, dim=0)
    dead = norms <= torch.finfo(A.dtype).tiny
    if bool(dead.any()):
        A = A.clone()
        A[:, dead] = 0
        A[0, dead] = 1
        norms = torch.where(dead, torch.ones_like(norms), norms)
    return A / norms


class _LipschitzTracker:
    """``L = ||A||_2^2`` for a slowly changing ``A`` without an SVD per step.

    Power iteration on ``A^T A``, warm-started from the previous top vector (a few products per
    step instead of an O(N^3) decomposition), in float64. The estimate ``theta`` is raised by
    the residual ``||A^T A v - theta v||`` (an eigenvalue lies within it) and a small margin,
    so FISTA's step ``1/L`` stays safe.
    """

    def __init__(self, n: int, seed: int, device):
        generator = torch.Generator().manual_seed(int(seed))
        v = torch.randn(n, generator=generator, dtype=torch.float64)
        self.v = (v / torch.linalg.vector_norm(v)).to(device)
        self.first = True

    def state(self) -> np.ndarray:
        return self.v.cpu().numpy()

    def restore(self, v: np.ndarray) -> None:
        self.v = torch.from_numpy(np.asarray(v, dtype=np.float64)).to(self.v.device)
        self.first = False

    def __call__(self, A: torch.Tensor) -> float:
        A64 = A.to(torch.float64)
        v = self.v
        for _ in range(200 if self.first else 10):
            w = A64.T @ (A64 @ v)
            v = w / torch.linalg.vector_norm(w).clamp_min(1e-300)
        self.first = False
        self.v = v
        w = A64.T @ (A64 @ v)
        theta = float(v @ w)
        residual = float(torch.linalg.vector_norm(w - theta * v))
        return (theta + residual) * (1 + 1e-3)


def initial_dictionary(signals, n_atoms: int, init: str, seed: int) -> np.ndarray:
    """``init="data"``: distinct random signals, normalised (a zero signal is replaced by a
    Gaussian column); ``"random"``: Gaussian columns. Returns (M, n_atoms) float32."""
    P, M = check_signal_array(signals)
    rng = np.random.default_rng([seed, 1])
    gaussian = rng.standard_normal((M, n_atoms))
    if init == "random":
        A = gaussian
    elif init == "data":
        picks = rng.choice(P, size=n_atoms, replace=n_atoms > P)
        A = np.stack([np.asarray(signals[int(p)], dtype=np.float64) for p in picks], axis=1)
        weak = np.linalg.norm(A, axis=0) <= 1e-12 * max(1.0, float(np.abs(A).max()))
        A[:, weak] = gaussian[:, weak]
        if n_atoms > P:  # repeated picks: perturb so no two atoms coincide
            A = A + 1e-3 * np.linalg.norm(A, axis=0) * gaussian / math.sqrt(M)
    else:
        raise InputError(f"init must be 'data' or 'random', got {init!r}")
    if not np.isfinite(A).all():
        raise InputError("signals contain NaN or Inf")
    return normalize_columns(torch.from_numpy(A)).numpy().astype(np.float32)


def _data_tag(signals, P: int, M: int) -> str:
    """A cheap fingerprint of the data (shape and a few rows), to refuse a wrong resume."""
    digest = hashlib.sha256(repr((P, M)).encode())
    for index in sorted({0, P // 2, P - 1}):
        digest.update(np.asarray(signals[index], dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def learn_dictionary(signals, n_atoms: int | None = None, alpha: float = 0.1, *,
                     epochs: int = 10, batch_size: int = 256, lr: float = 1.0,
                     lr_decay: float | None = None, tol: float = 1e-5, seed: int = 0,
                     init: str = "data", n_iter_codes: int = 50,
                     checkpoint_dir: str | Path | None = None, progress: bool = True,
                     device: str | torch.device | None = None,
                     cache_bytes: int = DEFAULT_CACHE_BYTES,
                     initial: np.ndarray | None = None) -> DictionaryResult:
    """Learn a dictionary with unit-norm columns by mini-batch SGD on paper Eq. 5.

    Parameters
    ----------
    signals : array (P, M), NumPy array or memmap (read a batch at a time).
    n_atoms : number of atoms N (default M, as many atoms as pixels per patch).
    alpha : l1 penalty (> 0) of the codes.
    epochs : most passes over the data.
    batch_size : samples per SGD step.
    lr, lr_decay : step size at step t is ``lr / (1 + t / lr_decay)``; ``lr_decay`` in steps,
        default ten epochs' worth of steps.
    tol : stop once ``|h_e - h_{e-1}| / |h_{e-1}| < tol`` for the epoch objective ``h``.
    seed : seeds the initial dictionary and the per-epoch shuffles.
    init : "data" (random normalised signals) or "random" (Gaussian columns).
    n_iter_codes : FISTA iterations per batch, warm-started from the samples' previous codes
        (kept in a per-sample cache when it fits in ``cache_bytes``, else from zero).
    checkpoint_dir : after every epoch the state is written there (atomically: .npy + JSON);
        when it already holds a checkpoint of the same run, learning resumes from it.
    progress : tqdm progress bar (only on a terminal).
    device : torch device for the computation (default CPU).
    initial : optional starting dictionary (M, n_atoms) instead of ``init``.

    Returns
    -------
    DictionaryResult with ``dictionary`` (M, n_atoms) float32.
    """
    P, M = check_signal_array(signals)
    n_atoms = M if n_atoms is None else _check_positive(n_atoms, "n_atoms", integer=True)
    alpha = _check_positive(alpha, "alpha")
    epochs = _check_positive(epochs, "epochs", integer=True)
    batch_size = min(_check_positive(batch_size, "batch_size", integer=True), P)
    lr = _check_positive(lr, "lr")
    n_iter_codes = _check_positive(n_iter_codes, "n_iter_codes", integer=True)
    if not math.isfinite(float(tol)) or tol < 0:
        raise InputError(f"tol must be a number >= 0, got {tol}")
    if init not in ("data", "random"):
        raise InputError(f"init must be 'data' or 'random', got {init!r}")
    steps_per_epoch = math.ceil(P / batch_size)
    lr_decay = 10 * steps_per_epoch if lr_decay is None else _check_positive(lr_decay, "lr_decay")
    device = torch.device(device or "cpu")

    config = {"n_atoms": n_atoms, "alpha": alpha, "batch_size": batch_size, "lr": lr,
              "lr_decay": lr_decay, "seed": int(seed), "init": init,
              "n_iter_codes": n_iter_codes, "P": P, "M": M,
              "data_tag": _data_tag(signals, P, M)}

    use_cache = P * n_atoms * 4 <= cache_bytes
    cache = np.zeros((P, n_atoms), dtype=np.float32) if use_cache else None
    history: list[float] = []
    start_epoch, step = 0, 0
    if initial is not None:
        A0 = np.asarray(initial, dtype=np.float32)
        if A0.shape != (M, n_atoms):
            raise InputError(f"initial dictionary must have shape {(M, n_atoms)}, got {A0.shape}")
        A0 = normalize_columns(torch.from_numpy(A0.copy())).numpy()
    else:
        A0 = None
    resumed = None
    if checkpoint_dir is not None:
        remove_stale_temporaries(checkpoint_dir)  # what killed runs left behind
        resumed = _load_checkpoint(checkpoint_dir, config)
    if resumed is not None:
        A0, state, saved_cache = resumed
        history, start_epoch, step = list(state["history"]), state["epoch"], state["step"]
        if cache is not None and saved_cache is not None:
            cache = saved_cache
        if state.get("converged"):
            return DictionaryResult(A0, history, start_epoch, True, config)
    if A0 is None:
        A0 = initial_dictionary(signals, n_atoms, init, seed)
    A = torch.from_numpy(np.ascontiguousarray(A0, dtype=np.float32)).to(device)

    lipschitz = _LipschitzTracker(n_atoms, seed, device)
    if resumed is not None:
        lipschitz.restore(resumed[1]["power"])
    bar = _progress_bar(progress, (epochs - start_epoch) * steps_per_epoch)
    converged = False
    for epoch in range(start_epoch, epochs):
        # The shuffle depends only on (seed, epoch), so a resumed run sees the same batches.
        order = np.random.default_rng([int(seed), 2, epoch]).permutation(P)
        total = 0.0
        for first in range(0, P, batch_size):
            index = np.sort(order[first:first + batch_size])
            Y = torch.from_numpy(_rows(signals, index)).to(device)
            # A tracked Lipschitz bound: an SVD per step would dominate for N ~ 1000.
            problem = replace(make_problem(A, alpha)[0], lipschitz_bound=lipschitz(A))
            x0 = None if cache is None else torch.from_numpy(cache[index]).to(device)
            X = run_iterations(problem, Y, "fista", n_iter_codes, x0=x0).codes
            total += float(_objective(problem, Y, X).sum())
            if cache is not None:
                cache[index] = X.cpu().numpy()
            # Gradient of the batch-mean objective at fixed codes, then projection.
            residual = Y - X @ A.T
            gradient = -(residual.T @ X) / Y.shape[0]
            A = normalize_columns(A - (lr / (1 + step / lr_decay)) * gradient)
            step += 1
            if bar is not None:
                bar.update(1)
        history.append(total / P)
        if bar is not None:
            bar.set_postfix(objective=f"{history[-1]:.5g}")
        if len(history) >= 2:
            change = abs(history[-1] - history[-2]) / max(abs(history[-2]), 1e-300)
            converged = change < tol
        if checkpoint_dir is not None:
            _save_checkpoint(checkpoint_dir, A.cpu().numpy(), cache, lipschitz.state(), config,
                             {"epoch": epoch + 1, "step": step, "history": history,
                              "converged": converged})
        if converged:
            break
    if bar is not None:
        bar.close()
    return DictionaryResult(A.cpu().numpy().astype(np.float32), history, len(history),
                            converged, config)


def _progress_bar(progress: bool, total: int):
    if not progress or not sys.stderr.isatty() or total <= 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="dictionary", unit="batch", leave=False)


def _save_checkpoint(directory, A: np.ndarray, cache: np.ndarray | None,
                     power: np.ndarray, config: dict, state: dict) -> None:
    """Write the epoch's arrays under new names, then point ``state.json`` at them: a crash at
    any moment leaves the previous complete checkpoint readable."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tag = f"e{state['epoch']:05d}"
    files = {"dictionary": f"dictionary_{tag}.npy", "power": f"power_{tag}.npy"}
    save_npy(directory / files["dictionary"], A)
    save_npy(directory / files["power"], power)
    if cache is not None:
        files["codes"] = f"codes_{tag}.npy"
        save_npy(directory / files["codes"], cache)
    write_json(directory / CHECKPOINT_STATE, {"config": config, "files": files, **state})
    for old in directory.glob("*_e*.npy"):
        if old.name not in files.values() and old.name.split("_e")[0] in files:
            old.unlink(missing_ok=True)


def _load_checkpoint(directory, config: dict):
    """``(A, state, cache or None)`` from a checkpoint of the same run, or None when empty.

    ``state.json`` is checked as strictly as model files and training checkpoints: a state
    this lsalsa would not have written (edited, damaged, pointing outside the folder) is
    refused in one line, never resumed into a run that silently differs."""
    directory = Path(directory)
    state_file = directory / CHECKPOINT_STATE
    if not state_file.is_file():
        return None
    state = read_json_object(state_file, "a dictionary-learning checkpoint state")
    if not isinstance(state.get("config"), dict):
        raise InputError(f"checkpoint {state_file} is not a dictionary-learning state "
                         "(no config object)")
    saved = state["config"]
    differs = sorted(k for k in config if saved.get(k) != config[k])
    if differs:
        raise InputError(f"checkpoint in {directory} belongs to another run (differs in "
                         f"{', '.join(differs)}); use a fresh --checkpoint-dir")
    problems = _state_problems(state, config)
    if problems:
        raise InputError(f"checkpoint {state_file} is invalid ({'; '.join(problems)}); use a "
                         "fresh --checkpoint-dir")
    files, n_atoms = state["files"], config["n_atoms"]
    A = _checkpoint_array(directory / files["dictionary"], (config["M"], n_atoms), np.float32)
    power = _checkpoint_array(directory / files["power"], (n_atoms,), np.float64)
    if not power.any():  # the Lipschitz tracker would estimate L = 0: an infinite step
        raise InputError(f"checkpoint {directory / files['power']} is all zeros")
    cache = None
    if "codes" in files:
        cache = _checkpoint_array(directory / files["codes"], (config["P"], n_atoms),
                                  np.float32)
    state["power"] = power
    return A, state, cache


def _state_problems(state: dict, config: dict) -> list[str]:
    """What is wrong with the fields of a checkpoint's state (besides its config)."""
    problems = []
    epoch, step, history, files = (state.get(k) for k in ("epoch", "step", "history", "files"))
    if not _is_int(epoch, 1):
        problems.append(f"epoch must be an integer >= 1, got {epoch!r}")
        epoch = None
    if not isinstance(history, list) or not all(_is_number(h) for h in history):
        problems.append("history must be a list of finite numbers")
    elif epoch is not None and len(history) != epoch:
        problems.append(f"history has {len(history)} entries at epoch {epoch}")
    # Every epoch takes the same number of steps: the lr schedule resumes from this count.
    steps = math.ceil(config["P"] / config["batch_size"])
    if epoch is not None and not (_is_int(step, 0) and step == epoch * steps):
        problems.append(f"step must be {epoch * steps} at epoch {epoch}, got {step!r}")
    if not isinstance(state.get("converged"), bool):
        problems.append(f"converged must be true or false, got {state.get('converged')!r}")
    if not isinstance(files, dict) or not {"dictionary", "power"} <= set(files) <= {
            "dictionary", "power", "codes"}:
        problems.append("files must name the dictionary, power (and codes) arrays")
    elif epoch is not None:
        # The names _save_checkpoint gives: plain names in this folder, of this epoch.
        for key, name in sorted(files.items()):
            if name != f"{key}_e{epoch:05d}.npy":
                problems.append(f"files.{key} must be {key}_e{epoch:05d}.npy, got {name!r}")
    return problems


def _checkpoint_array(file: Path, shape: tuple, dtype) -> np.ndarray:
    array = load_npy(file)
    if array.shape != shape:
        raise InputError(f"checkpoint array {file} has shape {array.shape}, expected {shape}")
    return as_real(array, dtype, f"checkpoint array {file}")


def save_dictionary(path: str | Path, result: DictionaryResult, extra: dict | None = None
                    ) -> Path:
    """Write the dictionary (.npy) and a JSON sidecar (same name, ``.json``) with its settings,
    objective history and provenance."""
    from ..version import provenance

    path = Path(path)
    sidecar = path.with_suffix(".json")
    save_npy(path, result.dictionary)
    write_json(sidecar, {"config": result.config, "history": result.history,
                         "epochs": result.epochs, "converged": result.converged,
                         "shape": list(result.dictionary.shape), **(extra or {}),
                         "provenance": provenance()})
    return sidecar


def plot_atoms(dictionary, path: str | Path, patch_shape: tuple[int, int] | None = None, *,
               title: str | None = None, max_atoms: int | None = None) -> Path:
    """A grid PNG of the atoms (columns) of ``dictionary`` (M, N).

    Each atom is shown as a ``patch_shape`` image (default square, ``sqrt(M)``), scaled to its
    own symmetric range so that zero is mid-grey.
    """
    A = as_real(dictionary, np.float64, "dictionary")
    if A.ndim != 2 or A.size == 0:
        raise InputError(f"dictionary must be a non-empty 2-D (M, N) array, got shape {A.shape}")
    M, N = A.shape
    if patch_shape is None:
        side = math.isqrt(M)
        if side * side != M:
            raise InputError(f"M = {M} is not a square; give patch_shape (rows, cols)")
        patch_shape = (side, side)
    h, w = (int(s) for s in patch_shape)
    if h < 1 or w < 1:
        raise InputError(f"patch_shape must be two sizes >= 1, got {patch_shape}")
    if h * w != M:
        raise InputError(f"patch_shape {patch_shape} does not hold M = {M} pixels")
    if max_atoms is not None:
        N = min(N, int(max_atoms))
    cols = math.ceil(math.sqrt(N))
    rows = math.ceil(N / cols)
    pad = 1
    # One mosaic image, background at the top of the range (white gaps between atoms).
    canvas = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad))
    for j in range(N):
        atom = A[:, j]
        peak = np.abs(atom).max()
        tile = 0.5 + 0.5 * atom / peak if peak > 0 else np.full(M, 0.5)
        r, c = divmod(j, cols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        canvas[top:top + h, left:left + w] = tile.reshape(h, w)

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    inches = max(3.0, min(16.0, canvas.shape[1] / 40))
    fig = Figure(figsize=(inches, inches * canvas.shape[0] / canvas.shape[1] + 0.3))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 0.95 if title else 1))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path

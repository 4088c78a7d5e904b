"""Dictionary learning (paper Eq. 5; Eq. 8 per clean component for MCA).

Mini-batch SGD on ``L(A) = 1/P sum_p E_A(x*_p; y_p)`` with unit-norm columns. For each batch
the codes come from FISTA (:func:`lsalsa.core.solvers.classic.run_iterations`), warm-started from
the codes the same samples had the last time they were seen; with the codes held fixed the
gradient of the batch objective is ``-R^T X / B`` with the residual ``R = Y - X A^T`` (the l1
term does not depend on ``A``). After every step each column is projected back to unit norm.

Arrays in, a :class:`DictionaryResult` out. After every epoch the loop hands its complete state
(:class:`DictionaryState`) to an ``on_epoch`` callback and can start again from such a state,
repeating the same operations: :mod:`lsalsa.workflow.dictionaries` keeps the checkpoints and
the stored dictionaries, :mod:`lsalsa.workflow.report.atoms` draws the atoms.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..errors import InputError
from ._arrays import check_signal_array
from .dictionary_settings import DEFAULTS, DictionarySettings
from .objective import _objective
from .problem import make_problem
from .solvers.classic import run_iterations

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


@dataclass
class DictionaryState:
    """Where learning stands after an epoch: everything a resume needs to repeat the run.

    Attributes
    ----------
    dictionary : ndarray (M, n_atoms) float32.
    power : ndarray (n_atoms,) float64, the Lipschitz tracker's vector (None before the first
        epoch: the tracker starts from a seeded random vector).
    codes : ndarray (P, n_atoms) float32, the warm-start code of every sample, or None when
        the cache does not fit in ``cache_bytes``.
    epoch : epochs done.
    step : SGD steps done (the step-size schedule continues from it).
    history : mean objective of each epoch done.
    converged : whether the tolerance was met (learning is over).
    """

    dictionary: np.ndarray
    power: np.ndarray | None
    codes: np.ndarray | None
    epoch: int
    step: int
    history: list[float]
    converged: bool


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
    Gaussian column); ``"random"``: Gaussian columns. Returns (M, n_atoms) float32. Its
    arguments are those :func:`learning_config` checked."""
    P, M = signals.shape
    rng = np.random.default_rng([seed, 1])
    gaussian = rng.standard_normal((M, n_atoms))
    if init == "random":
        A = gaussian
    else:
        picks = rng.choice(P, size=n_atoms, replace=n_atoms > P)
        A = np.stack([np.asarray(signals[int(p)], dtype=np.float64) for p in picks], axis=1)
        weak = np.linalg.norm(A, axis=0) <= 1e-12 * max(1.0, float(np.abs(A).max()))
        A[:, weak] = gaussian[:, weak]
        if n_atoms > P:  # repeated picks: perturb so no two atoms coincide
            A = A + 1e-3 * np.linalg.norm(A, axis=0) * gaussian / math.sqrt(M)
    if not np.isfinite(A).all():
        raise InputError("signals contain NaN or Inf")
    return normalize_columns(torch.from_numpy(A)).numpy().astype(np.float32)


def _data_tag(signals, P: int, M: int) -> str:
    """A cheap fingerprint of the data (shape and a few rows), to refuse a wrong resume."""
    digest = hashlib.sha256(repr((P, M)).encode())
    for index in sorted({0, P // 2, P - 1}):
        digest.update(np.asarray(signals[index], dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def _fresh_state(signals, config: dict, initial, cache_bytes: int) -> DictionaryState:
    """The state before the first epoch: ``initial`` (normalised) or the ``init`` dictionary,
    zero warm starts when they fit in ``cache_bytes``, no tracker vector yet."""
    P, M, n_atoms = config["P"], config["M"], config["n_atoms"]
    if initial is not None:
        A0 = np.asarray(initial, dtype=np.float32)
        if A0.shape != (M, n_atoms):
            raise InputError(f"initial dictionary must have shape {(M, n_atoms)}, got {A0.shape}")
        A0 = normalize_columns(torch.from_numpy(A0.copy())).numpy()
    else:
        A0 = initial_dictionary(signals, n_atoms, config["init"], config["seed"])
    codes = np.zeros((P, n_atoms), dtype=np.float32) if P * n_atoms * 4 <= cache_bytes else None
    return DictionaryState(A0, None, codes, 0, 0, [], False)


def learning_config(signals, n_atoms: int | None = None, alpha: float = DEFAULTS["alpha"], *,
                    epochs: int = DEFAULTS["epochs"], batch_size: int = DEFAULTS["batch_size"],
                    lr: float = DEFAULTS["lr"], lr_decay: float | None = DEFAULTS["lr_decay"],
                    tol: float = DEFAULTS["tol"], seed: int = DEFAULTS["seed"],
                    init: str = DEFAULTS["init"],
                    n_iter_codes: int = DEFAULTS["n_iter_codes"]) -> dict:
    """Check every setting of :func:`learn_dictionary`; return the run's config as recorded.

    Defaults are resolved against the data (``n_atoms``, ``batch_size`` at most P,
    ``lr_decay``), and ``P``, ``M`` and a tag of a few rows are added: a state may only be
    resumed into a run with the same config. ``epochs`` and ``tol`` are checked but not part
    of it (a run may continue for more epochs, or to another tolerance).
    """
    P, M = check_signal_array(signals)
    s = DictionarySettings(n_atoms=n_atoms, alpha=alpha, epochs=epochs, batch_size=batch_size,
                           lr=lr, lr_decay=lr_decay, tol=tol, seed=seed, init=init,
                           n_iter_codes=n_iter_codes)
    n_atoms = M if s.n_atoms is None else s.n_atoms
    batch_size = min(s.batch_size, P)
    lr_decay = 10 * math.ceil(P / batch_size) if s.lr_decay is None else s.lr_decay
    return {"n_atoms": n_atoms, "alpha": s.alpha, "batch_size": batch_size, "lr": s.lr,
            "lr_decay": lr_decay, "seed": s.seed, "init": s.init,
            "n_iter_codes": s.n_iter_codes, "P": P, "M": M, "data_tag": _data_tag(signals, P, M)}


def learn_dictionary(signals, n_atoms: int | None = None, alpha: float = DEFAULTS["alpha"], *,
                     epochs: int = DEFAULTS["epochs"], batch_size: int = DEFAULTS["batch_size"],
                     lr: float = DEFAULTS["lr"], lr_decay: float | None = DEFAULTS["lr_decay"],
                     tol: float = DEFAULTS["tol"], seed: int = DEFAULTS["seed"],
                     init: str = DEFAULTS["init"], n_iter_codes: int = DEFAULTS["n_iter_codes"],
                     device: str | torch.device | None = None,
                     cache_bytes: int = DEFAULT_CACHE_BYTES,
                     initial: np.ndarray | None = None, state: DictionaryState | None = None,
                     on_epoch: Callable[[DictionaryState], None] | None = None,
                     callback: Callable[[int, int], None] | None = None) -> DictionaryResult:
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
    device : torch device for the computation (default CPU).
    initial : optional starting dictionary (M, n_atoms) instead of ``init``.
    state : continue from this state, which an ``on_epoch`` call of a run with the same
        :func:`learning_config` gave; the result is then bit-identical to an uninterrupted run.
        Its ``codes`` array is updated in place.
    on_epoch : called with the :class:`DictionaryState` after every epoch (e.g. to write a
        checkpoint). Its ``codes`` is the live cache: save or copy it during the call.
    callback : called as ``callback(done, total)`` after every batch of this call.

    Returns
    -------
    DictionaryResult with ``dictionary`` (M, n_atoms) float32.
    """
    config = learning_config(signals, n_atoms, alpha, epochs=epochs, batch_size=batch_size,
                             lr=lr, lr_decay=lr_decay, tol=tol, seed=seed, init=init,
                             n_iter_codes=n_iter_codes)
    P, n_atoms, batch_size = config["P"], config["n_atoms"], config["batch_size"]
    alpha, lr, lr_decay, seed = config["alpha"], config["lr"], config["lr_decay"], config["seed"]
    steps_per_epoch = math.ceil(P / batch_size)
    device = torch.device(device or "cpu")

    if state is not None and state.converged:
        return DictionaryResult(state.dictionary, list(state.history), state.epoch, True, config)
    state = _starting_state(state, signals, config, initial, cache_bytes)
    A = torch.from_numpy(np.ascontiguousarray(state.dictionary, dtype=np.float32)).to(device)
    cache, history, start_epoch, step = state.codes, list(state.history), state.epoch, state.step

    lipschitz = _LipschitzTracker(n_atoms, seed, device)
    if state.power is not None:
        lipschitz.restore(state.power)
    first_step, batches = step, (epochs - start_epoch) * steps_per_epoch  # for callback
    converged = False
    for epoch in range(start_epoch, epochs):
        # The shuffle depends only on (seed, epoch), so a resumed run sees the same batches.
        order = np.random.default_rng([seed, 2, epoch]).permutation(P)
        total = 0.0
        for first in range(0, P, batch_size):
            index = np.sort(order[first:first + batch_size])
            Y = torch.from_numpy(_rows(signals, index)).to(device)
            A, objective = _sgd_step(A, Y, alpha, lipschitz(A), n_iter_codes, cache, index,
                                     lr / (1 + step / lr_decay))
            total, step = total + objective, step + 1
            if callback is not None:
                callback(step - first_step, batches)
        history.append(total / P)
        converged = len(history) >= 2 and (abs(history[-1] - history[-2])
                                           / max(abs(history[-2]), 1e-300)) < tol
        if on_epoch is not None:
            on_epoch(DictionaryState(A.cpu().numpy(), lipschitz.state(), cache, epoch + 1, step,
                                     list(history), converged))
        if converged:
            break
    return DictionaryResult(A.cpu().numpy().astype(np.float32), history, len(history),
                            converged, config)


def _starting_state(state: DictionaryState | None, signals, config: dict, initial,
                    cache_bytes: int) -> DictionaryState:
    """A fresh state, or ``state`` with a code cache that fits ``cache_bytes`` (none: the
    warm starts do not fit, FISTA starts from zero)."""
    if state is None:
        return _fresh_state(signals, config, initial, cache_bytes)
    if config["P"] * config["n_atoms"] * 4 > cache_bytes:
        return replace(state, codes=None)
    if state.codes is None:
        return replace(state, codes=np.zeros((config["P"], config["n_atoms"]),
                                             dtype=np.float32))
    return state


def _sgd_step(A: torch.Tensor, Y: torch.Tensor, alpha, lipschitz_bound: float,
              n_iter_codes: int, cache, index, lr_t: float) -> tuple[torch.Tensor, float]:
    """One step on a batch: its codes by FISTA (warm-started from ``cache`` rows ``index``,
    which get the new codes), then the gradient of the batch-mean objective at those codes
    and the projection onto unit columns. Returns the new dictionary and the batch's
    objective summed over its samples (before the step)."""
    # A tracked Lipschitz bound: an SVD per step would dominate for N ~ 1000.
    problem = replace(make_problem(A, alpha)[0], lipschitz_bound=lipschitz_bound)
    x0 = None if cache is None else torch.from_numpy(cache[index]).to(A.device)
    X = run_iterations(problem, Y, "fista", n_iter_codes, x0=x0).codes
    objective = float(_objective(problem, Y, X).sum())
    if cache is not None:
        cache[index] = X.cpu().numpy()
    gradient = -((Y - X @ A.T).T @ X) / Y.shape[0]
    return normalize_columns(A - lr_t * gradient), objective

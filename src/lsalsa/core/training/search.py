"""The paper's hyperparameter search, per depth T, selecting by validation RMSE.

The classic methods are tuned first, on the validation pairs, as hard as the learned ones:

- ``ista`` and ``fista``: alpha, ``salsa``: alpha x mu (mu down to 0.5 and below), each run
  for exactly T iterations; one trajectory per setting gives every T at once
  (:func:`classic_curves`).

Each learned encoder then starts from its classic algorithm at its best setting for that T
(:func:`best_classic`): LISTA from the best ISTA alpha, LSALSA from the best SALSA (alpha, mu),
so at epoch 0 it is already as good as that algorithm can be made, and training (which never
returns something worse on validation) can only improve on it. Only the training knobs are
searched for the learned methods:

- ``lista``, ``lsalsa`` (learned thresholds, the default) and ``lsalsa-fixed`` (the paper's
  exact model, thresholds ``alpha / mu`` fixed): learning rate x decay (x the thresholds'
  relative step, for the methods that learn them), trained for ``epochs``.

Each trial is scored by the mean per-sample RMSE of its codes against the optimal codes of the
validation signals. This module holds the selection's numerics; the grid search itself, which
trains the trials and keeps the tables of a run, is :func:`lsalsa.workflow.search.search`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

import numpy as np
import torch

from ...checks import (
    Settings,
    flag,
    non_empty_list,
    non_negative_number,
    one_of,
    positive_int,
    positive_number,
    rule,
)
from ...errors import InputError
from ..metrics import code_rmse
from ..problem import DEFAULT_MU, check_mu, make_problem
from ..solvers.classic import iterates
from .settings import DEFAULTS, check_lr, check_pair

CLASSIC_METHODS = ("ista", "fista", "salsa")


class LearnedMethod(NamedTuple):
    """A learned method: its encoder, whether it learns its thresholds, the classic
    algorithm it starts as, what it is trained on (:data:`~.settings.OBJECTIVES`), and
    whether its training mixtures place the first component (the digit) as a whole picture
    would (:func:`~lsalsa.core.mixtures.place_patches`)."""

    kind: str
    learn_thresholds: bool
    start: str
    objective: str = "codes"
    placed: bool = False


LEARNED_METHODS = {"lista": LearnedMethod("lista", True, "ista"),
                   "lsalsa": LearnedMethod("lsalsa", True, "salsa"),
                   "lsalsa-fixed": LearnedMethod("lsalsa", False, "salsa"),
                   # MCA only: trained on the true components (the separation objective).
                   "lsalsa-sep": LearnedMethod("lsalsa", True, "salsa", "separation"),
                   # ... on mixtures made as windows of whole pictures are (digits anywhere
                   # or absent, clipped at 1): the model for lsalsa separate.
                   "lsalsa-pic": LearnedMethod("lsalsa", True, "salsa", "separation", True)}
# The paper's exact model (Eq. 14: tied layers, fixed thresholds), kept beside every change.
PAPER_MODEL = "lsalsa-fixed"


def untied_layers(method: str, untied: bool) -> bool:
    """Whether ``method`` learns one S per layer where untied layers are asked for: every
    learned method but :data:`PAPER_MODEL`, which stays tied."""
    return bool(untied) and method != PAPER_MODEL


def threshold_steps(method: str, grid) -> list:
    """The thresholds' steps ``method`` is searched over: ``grid`` when it learns its
    thresholds, else ``[None]`` (it has no such knob)."""
    return list(grid) if LEARNED_METHODS[method].learn_thresholds else [None]


def threshold_step(method: str, row: dict) -> float | None:
    """The thresholds' step ``method`` trained with, from its row (a search's, or a model's
    recorded hyperparameters): None where its thresholds are fixed, the default where the row
    holds none (recorded only away from it; rows from before the knob lack it)."""
    if not LEARNED_METHODS[method].learn_thresholds:
        return None
    return row.get("threshold_lr", DEFAULTS["threshold_lr"])


# The paper's methods, trained on the optimal codes: the default of every experiment.
PAPER_METHODS = tuple(m for m, v in LEARNED_METHODS.items() if v.objective == "codes")
SEARCH_METHODS = ("fista", "salsa", "lista", "lsalsa")
MUS = (0.5, 1.0, 2.0, 5.0, 10.0)
# Alphas are searched as factors of the optimal codes' alphas: one number scales every
# component alike, one per component ([f1, f2]) scales them apart (MCA).
ALPHA_FACTORS = (0.5, 1.0, 2.0)
MCA_ALPHA_FACTORS = ((0.5, 1.0), (1.0, 0.5), (1.0, 2.0), (2.0, 1.0))
COLUMNS = ("method", "T", "alpha", "mu", "lr", "lr_decay", "threshold_lr", "val_rmse", "epochs",
           "best_epoch", "stopped", "seconds")  # of a search's rows


def grid_alpha(value, name: str):
    """One alpha of a search's grid: a number >= 0, or one per dictionary (a list, or the
    text ``a1:a2`` of a command line)."""
    if isinstance(value, str):
        try:
            parts = [float(part) for part in value.split(":")]
        except ValueError:
            raise InputError(f"{name} must be a number >= 0, or one per dictionary (a1:a2), "
                             f"got {value!r}") from None
        value = parts[0] if len(parts) == 1 else parts
    if isinstance(value, list | tuple | np.ndarray):
        return [non_negative_number(item, name) for item in non_empty_list(list(value), name)]
    return non_negative_number(value, name)


@dataclass(frozen=True)
class StartSettings(Settings):
    """Where a learned encoder starts (:func:`lsalsa.workflow.search.encoder_start`): what is
    not given is chosen on the validation data."""

    mu: float | None = rule(positive_number, None, none=True,
                            help="LSALSA's mu ('none': the best of "
                                 f"{', '.join(f'{m:g}' for m in MUS)} for SALSA at T "
                                 "iterations on the validation data)")


@dataclass(frozen=True)
class SearchGrid(Settings):
    """The grid of the search per depth (:func:`lsalsa.workflow.search.search`), declared
    once: ``lsalsa search`` makes its flags from it and the experiments' search section
    shares it. Checked when made."""

    depths: tuple[int, ...] = rule(non_empty_list, each=positive_int,
                                   help="the depths T (layers, or iterations)")
    alphas: tuple = rule(non_empty_list, each=grid_alpha,
                         help="the grid of alpha, each one number or one per dictionary "
                              "(a1:a2)")
    methods: tuple[str, ...] = rule(non_empty_list, SEARCH_METHODS,
                                    each=partial(one_of, choices=(*CLASSIC_METHODS,
                                                                  *LEARNED_METHODS)),
                                    help="the methods searched")
    mus: tuple[float, ...] = rule(non_empty_list, MUS, each=positive_number,
                                  help="SALSA's grid of mu (LSALSA starts at the best)")
    lrs: tuple[float, ...] = rule(non_empty_list, (DEFAULTS["lr"],), each=check_lr,
                                  help="grid of the learned methods' learning rate")
    lr_decays: tuple[float, ...] = rule(non_empty_list, (DEFAULTS["lr_decay"],),
                                        each=non_negative_number,
                                        help="grid of the learning rate's inverse-time decay")
    threshold_lrs: tuple[float, ...] = rule(non_empty_list, (DEFAULTS["threshold_lr"],),
                                            each=positive_number,
                                            help="grid of the learned thresholds' step (x the "
                                                 "learning rate)")
    epochs: int = rule(positive_int, 10, help="training epochs of each learned trial")
    untied: bool = rule(flag, False,
                        help="one S per layer for every learned method but lsalsa-fixed, the "
                             "paper's tied model")


@dataclass
class SearchResult:
    """All trials (``rows``, one dict per trial, columns :data:`COLUMNS`) and the winners.

    ``best[(method, T)]`` is the row with the lowest validation RMSE for that method and depth.
    """

    rows: list[dict] = field(default_factory=list)
    best: dict[tuple[str, int], dict] = field(default_factory=dict)


def classic_curves(signals, references, dictionaries, method: str, depths, settings, *,
                   batch_size: int = 16384) -> np.ndarray:
    """Validation RMSE of ISTA, FISTA or SALSA for every setting at every depth.

    Parameters
    ----------
    signals, references : validation signals (P, M) and their optimal codes (P, N).
    dictionaries : array (M, N) or list of arrays (M, N_i); their dtype and device are used.
    method : "ista", "fista" or "salsa".
    depths : the iteration counts T to record.
    settings : list of ``{"alpha": ..., "mu": ...}`` (mu ignored but for SALSA).

    Returns
    -------
    array (len(settings), len(depths)) of mean per-sample code RMSE (inf where not finite).
    One trajectory per setting to ``max(depths)`` iterations gives every depth at once.
    """
    return _curves(signals, references, dictionaries, method, depths, settings, batch_size)[0]


def chosen_curves(signals, references, dictionaries, method: str, depths, settings,
                  choice) -> dict[str, np.ndarray]:
    """Mean code RMSE and sparsity on ``signals`` of the setting chosen for each depth
    (``settings[choice[j]]`` at ``depths[j]``, e.g. chosen on validation by
    :func:`classic_curves`): one trajectory per distinct chosen setting. Arrays (len(depths),)
    under "rmse" and "sparsity"."""
    out = {"rmse": np.full(len(depths), np.inf), "sparsity": np.full(len(depths), np.nan)}
    choice = np.asarray(choice)
    for k in np.unique(choice):
        at = np.flatnonzero(choice == k)
        rmse, sparsity = _curves(signals, references, dictionaries, method,
                                 [depths[j] for j in at], [settings[int(k)]])
        out["rmse"][at], out["sparsity"][at] = rmse[0], sparsity[0]
    return out


def selected_curves(val, other, dictionaries, method: str, depths, settings) -> dict:
    """Per depth T, the setting with the lowest validation RMSE, and how that choice does on
    other signals (e.g. the test split: nothing is selected on them).

    ``val`` and ``other`` are ``(signals, optimal codes)`` pairs. Returns ``choice`` (index into
    ``settings`` per depth), ``val_rmse`` (its validation RMSE), and ``rmse`` and ``sparsity``
    on ``other``: arrays of len(depths).
    """
    val_curves = classic_curves(*val, dictionaries, method, depths, settings)
    choice = _choose(val_curves, method, depths)
    return {"choice": choice, "val_rmse": val_curves.min(axis=0),
            **chosen_curves(*other, dictionaries, method, depths, settings, choice)}


def _choose(curves: np.ndarray, method: str, depths) -> np.ndarray:
    """Per depth (column of ``curves``, settings x depths), the setting with the lowest
    validation RMSE, ties keeping the first; a depth where every setting diverges is refused,
    since nothing there is a baseline or a start."""
    choice = curves.argmin(axis=0)
    for j, T in enumerate(depths):
        if not np.isfinite(curves[choice[j], j]):
            raise InputError(f"every {method.upper()} setting diverges at T = {T} on the "
                             "validation data; nothing to start from")
    return choice


def _curves(signals, references, dictionaries, method, depths, settings, batch_size=16384):
    """Mean per-sample code RMSE (inf where not finite) and sparsity, (settings, depths)."""
    if method not in CLASSIC_METHODS:
        raise InputError(f"unknown classic method {method!r}; choose from {CLASSIC_METHODS}")
    depths = [positive_int(T, "depth") for T in depths]
    column = {T: j for j, T in enumerate(depths)}
    like = make_problem(dictionaries, 0.0)[0].A
    check_pair(signals, references, like.shape[0], like.shape[1], "signals", "references")
    rmse = np.zeros((len(settings), len(depths)))
    zeros = np.zeros_like(rmse)
    with torch.inference_mode():
        for k, setting in enumerate(settings):
            problem = make_problem(dictionaries, setting["alpha"])[0]
            for first in range(0, len(signals), batch_size):
                Y = as_tensor_like(signals[first:first + batch_size], like)
                X = as_tensor_like(references[first:first + batch_size], like)
                mu = setting.get("mu")  # only SALSA's settings have one
                for T, codes in iterates(problem, Y, method, max(depths),
                                         mu=DEFAULT_MU if mu is None else mu):
                    if T in column:
                        rmse[k, column[T]] += float(code_rmse(codes, X).sum())
                        zeros[k, column[T]] += float((codes == 0).double().mean(dim=1).sum())
    rmse /= len(signals)
    rmse[~np.isfinite(rmse)] = np.inf
    return rmse, zeros / len(signals)


def alpha_candidates(alphas, factors=None) -> list[list[float]]:
    """Each factor times ``alphas`` (default :data:`ALPHA_FACTORS`, and for two components
    also :data:`MCA_ALPHA_FACTORS`)."""
    alphas = [float(a) for a in alphas]
    if factors is None:
        factors = [*ALPHA_FACTORS, *(MCA_ALPHA_FACTORS if len(alphas) == 2 else ())]
    out = []
    for factor in factors:
        values = list(factor) if isinstance(factor, list | tuple) else [factor] * len(alphas)
        if len(values) != len(alphas):
            raise InputError(f"alpha factor {factor} needs {len(alphas)} values")
        out.append([round(float(f) * a, 12) for f, a in zip(values, alphas, strict=True)])
    return out


def classic_settings(method: str, alphas, mus=MUS) -> list[dict]:
    """The grid of a classic method: alpha for ISTA and FISTA, alpha x mu for SALSA."""
    return [{"alpha": plain_alpha(a), "mu": check_mu(m) if method == "salsa" else None}
            for a in alphas for m in (mus if method == "salsa" else [None])]


def best_classic(signals, references, dictionaries, method: str, depths, alphas,
                 mus=MUS) -> dict[int, dict]:
    """Per depth T, the classic setting with the lowest validation RMSE:
    ``{T: {"alpha", "mu", "val_rmse"}}`` (ties keep the first setting of the grid)."""
    settings = classic_settings(method, alphas, mus)
    curves = classic_curves(signals, references, dictionaries, method, depths, settings)
    choice = _choose(curves, method, depths)
    return {int(T): {**settings[k], "val_rmse": float(curves[k, j])}
            for j, (T, k) in enumerate(zip(depths, choice.tolist(), strict=True))}


def best_rows(rows: list[dict]) -> dict[tuple[str, int], dict]:
    """The lowest-RMSE row per (method, T); ties keep the first tried; diverged rows lose."""
    def score(row):
        return math.inf if row["val_rmse"] is None else row["val_rmse"]

    best: dict[tuple[str, int], dict] = {}
    for row in rows:
        key = (row["method"], row["T"])
        if key not in best or score(row) < score(best[key]):
            best[key] = row
    return best


def plain_alpha(alpha):
    """An alpha as plain JSON: a float, or a list of floats (one per dictionary)."""
    if isinstance(alpha, list | tuple | np.ndarray):
        return [float(a) for a in alpha]
    return float(alpha)


def as_tensor_like(array, like: torch.Tensor) -> torch.Tensor:
    """``array`` (NumPy, copied, or torch) in ``like``'s dtype and on its device."""
    tensor = array if isinstance(array, torch.Tensor) else torch.from_numpy(np.array(array))
    return tensor.to(dtype=like.dtype, device=like.device)

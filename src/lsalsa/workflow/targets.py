"""The paper's targets, checked against an experiment's stored results.

A config's ``targets`` are claims (one kind each, :data:`lsalsa.workflow.config.TARGET_KINDS`);
:func:`evaluate_targets` checks each one with the check of its kind (:data:`CHECKS`), which
reads the numbers as selections of the run's tidy records
(:class:`~lsalsa.workflow.results_view.ResultsView`), and gives a verdict: met, missed, or n/a
where the measurement cannot decide it. The helpers on iteration counts read from the dense
grid (:func:`grid_step`, :func:`first_unevaluated`) serve the report too; the verdicts on a
count or a time ratio (:func:`count_verdict`, :func:`ratio_verdict`) serve the
time-to-accuracy benchmark.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .config import PSNR_BASELINES
from .results_table import MATCH_METRICS
from .results_view import ResultsView


class Verdict(NamedTuple):
    """One target's verdict: ``status`` ("met" | "missed" | "n/a"), ``measured`` (a sentence
    with the numbers) and ``values`` (the numbers themselves, as results.json stores them)."""

    status: str
    measured: str
    values: dict


CLASSIFICATION_PREFIX = "classification_error_"  # one metric per task (results_table)


class Facts(NamedTuple):
    """What a check reads besides the records: the dense grid's horizon and how many models
    were trained (descriptions of the run, not measurements)."""

    dense_max: int | None
    trained: int


def _undecided(measured: str) -> Verdict:
    return Verdict("n/a", measured, {})


def evaluate_targets(targets: list[dict], results: dict) -> list[dict]:
    """Check each target of the config against ``results`` (the ``results.json`` dict).

    Returns one dict per target: ``text``, ``kind``, and the :class:`Verdict`'s ``status``,
    ``measured`` and ``values``. A kind without a check stays n/a.
    """
    view = ResultsView.of(results)
    facts = Facts(results.get("dense_max"), len(results.get("training") or {}))
    out = []
    for target in targets:
        check = CHECKS.get(target["kind"])
        verdict = check(target, view, facts) if check else _undecided("")
        out.append({"text": target["text"], "kind": target["kind"], **verdict._asdict()})
    return out


# -- iteration counts and time ratios -----------------------------------------------------------


def count_verdict(needed: int | None, horizon: int, more_than: int) -> bool | None:
    """Whether a method needs more than ``more_than`` iterations, from the count it needed
    (None: not reached within ``horizon`` iterations, so it needs at least ``horizon + 1``).
    None where the measurement cannot decide it."""
    if needed is not None:
        return needed > more_than
    return True if horizon >= more_than else None


def ratio_verdict(ratio: float, reached: bool, at_least: float) -> bool | None:
    """Whether a time ratio is at least ``at_least``. A ratio timed at the horizon of a method
    that never reached the accuracy is a lower bound: it can show a target met, never missed
    (None)."""
    if ratio >= at_least:
        return True
    return False if reached else None


def grid_step(depths, T: int) -> int | None:
    """How far apart the evaluated depths are just below ``T``, or None if every count from 1
    to ``T`` was evaluated. Otherwise :func:`lsalsa.core.metrics.iterations_to_match` gave an
    upper bound only: an iteration count that was not evaluated may already reach the
    reference."""
    grid = sorted(int(t) for t in depths)
    if all(t in grid for t in range(1, T + 1)):
        return None
    below = [t for t in grid if t < T]
    return T - (below[-1] if below else 0)


def first_unevaluated(depths) -> int:
    """The smallest iteration count missing from ``depths``: no count below it was skipped."""
    grid = {int(t) for t in depths}
    missing = 1
    while missing in grid:
        missing += 1
    return missing


def describe_count(T: int | None, step: int | None) -> str:
    """An iteration count as the report prints it: with "(upper bound: grid step k)" when the
    dense grid skipped counts below it."""
    if T is None:
        return "n/a"
    return str(T) if step is None else f"{T} (upper bound: grid step {step})"


def dense_grid(view: ResultsView, method: str) -> list[int] | None:
    """The depths at which the dense curve of ``method`` was evaluated."""
    return list(view.curve(method, "dense_code_rmse")) or None


def _curve(view: ResultsView, method: str) -> dict[int, float]:
    return view.curve(method, "code_rmse")


def match_record(view: ResultsView, method: str, reference_T: int) -> dict | None:
    """How ``method`` matched LSALSA at ``reference_T``, keyed as :data:`MATCH_METRICS`
    (iterations None when it never did; the counts as integers), or None when it was not
    measured."""
    matched = view.value(method, reference_T, "matched")
    if matched is None:
        return None
    match = {key: view.value(method, reference_T, metric)
             for key, metric in MATCH_METRICS.items()}
    match["iterations"] = int(match["iterations"]) if matched else None
    if match["timed_at"] is not None:
        match["timed_at"] = int(match["timed_at"])
    return match


# -- one check per target kind ------------------------------------------------------------------


def _iterations_to_match(target: dict, view: ResultsView, facts: Facts) -> Verdict:
    """``method`` needs more than ``more_than`` iterations to match LSALSA at ``reference_T``."""
    match = match_record(view, target["method"], target["reference_T"])
    if match is None:
        return _undecided(f"LSALSA was not run at T = {target['reference_T']}")
    T, limit = match["iterations"], target["more_than"]
    top = facts.dense_max
    grid = dense_grid(view, target["method"])
    step = None if T is None or grid is None else grid_step(grid, T)
    values = {"iterations": T, "more_than": limit, "dense_max": top,
              "upper_bound": step is not None}
    name = target["method"].upper()
    verdict = count_verdict(T, top, limit)
    if T is None:
        return Verdict("met" if verdict else "n/a",
                       f"{name} does not reach it within {top} iterations (> {top})"
                       + ("" if verdict else f"; the run stops short of {limit + 1}"), values)
    if step is None:
        # Every count up to T was evaluated: the method needs exactly T iterations.
        return Verdict("met" if verdict else "missed",
                       f"{name} needs {T} iteration{'s' if T != 1 else ''} "
                       f"(target: more than {limit}"
                       + ("" if T > limit else f"; missed by {limit + 1 - T}") + ")", values)
    # Counts skipped by the grid below T may already reach it: at least the first skipped
    # count, at most T.
    low = first_unevaluated(grid)
    status = "missed" if T <= limit else "met" if low > limit else "n/a"
    return Verdict(status, f"{name} needs at most {T} iterations (upper bound: grid step "
                           f"{step}; at least {low}) (target: more than {limit}"
                           + ("; not decided by the grid" if status == "n/a" else "") + ")",
                   values)


def _time_ratio(target: dict, view: ResultsView, facts: Facts) -> Verdict:
    """``method``'s time to match LSALSA at ``reference_T`` is at least ``at_least`` times
    LSALSA's."""
    match = match_record(view, target["method"], target["reference_T"])
    if match is None:
        return _undecided(f"LSALSA was not run at T = {target['reference_T']}")
    if match["iterations"] is None:
        return _time_ratio_never_matched(target, facts, match)
    ratio = match["time_ratio"]
    lsalsa_seconds = view.value("lsalsa", target["reference_T"], "seconds")
    grid = dense_grid(view, target["method"])
    step = None if grid is None else grid_step(grid, match["iterations"])
    values = {"ratio": ratio, "seconds": match["seconds"], "lsalsa_seconds": lsalsa_seconds}
    if step is not None:
        values["upper_bound"] = True
    # At an upper-bound count the time, and so the ratio, are upper bounds too: a ratio
    # below the target is a miss, one above it decides nothing.
    status = "missed" if ratio < target["at_least"] else "met" if step is None else "n/a"
    return Verdict(status, f"{match['seconds']:.4g} s ("
                           f"{describe_count(match['iterations'], step)} iterations) vs "
                           f"LSALSA {lsalsa_seconds:.4g} s: {ratio:.3g}x"
                           + (" at most" if step is not None else "")
                           + f" (target: at least {target['at_least']}x)", values)


def _time_ratio_never_matched(target: dict, facts: Facts, match: dict) -> Verdict:
    """The time ratio of a method that never matched: timed at the last count evaluated, the
    time to match is longer still (no time stored: nothing to decide on)."""
    ratio = match["time_ratio"]
    measured = (f"{target['method'].upper()} never reaches it within "
                f"{facts.dense_max} iterations")
    if ratio is None:
        return _undecided(measured)
    verdict = ratio_verdict(ratio, False, target["at_least"])
    return Verdict("met" if verdict else "n/a",
                   measured + f"; at {facts.dense_max}: {ratio:.3g}x or more "
                              f"(target: at least {target['at_least']}x)",
                   {"ratio": ratio, "lower_bound": True})


def _rmse_ratio(target: dict, view: ResultsView, facts: Facts) -> Verdict:
    """``method``'s test RMSE is at most ``at_most`` times ``other``'s at every depth ``T``."""
    mine, other = _curve(view, target["method"]), _curve(view, target["other"])
    missing = [T for T in target["T"] if T not in mine or T not in other]
    if missing:
        return _undecided(f"not run at T = {', '.join(map(str, missing))}")
    ratios = {T: mine[T] / other[T] for T in target["T"]}
    bad = [T for T, r in ratios.items() if not r <= target["at_most"]]
    return Verdict("missed" if bad else "met",
                   f"test RMSE ratio {target['method']}/{target['other']}: " + ", ".join(
                       f"T={T}: {r:.3g}" for T, r in ratios.items())
                   + f" (target: at most {target['at_most']:g}"
                   + (f"; missed at T = {', '.join(map(str, bad))}" if bad else "") + ")",
                   {"ratio": {str(T): r for T, r in ratios.items()}})


def _rmse_below(target: dict, view: ResultsView, facts: Facts) -> Verdict:
    """``method``'s RMSE is below ``other``'s at every common depth below ``below_T``."""
    mine, other = _curve(view, target["method"]), _curve(view, target["other"])
    depths = sorted(T for T in mine if T in other and T < target["below_T"])
    if not depths:
        return _undecided("no common depth below the bound")
    ratios = {T: mine[T] / other[T] for T in depths}
    bad = [T for T in depths if mine[T] >= other[T]]
    return Verdict("missed" if bad else "met",
                   "RMSE ratio LSALSA/SALSA " + ", ".join(
                       f"T={T}: {r:.3g}" for T, r in ratios.items())
                   + (f"; not below at T = {', '.join(map(str, bad))}" if bad else ""),
                   {"ratio": {str(T): r for T, r in ratios.items()}})


def _psnr_mean_at_least(target: dict, view: ResultsView, facts: Facts) -> Verdict:
    """``method``'s mean PSNR over the components is at least that of SALSA's separation
    baseline (``baseline``, :data:`PSNR_BASELINES`) at every depth ``T``."""
    key = PSNR_BASELINES[target.get("baseline", "codes_alphas")]
    if not view.curve(key, "psnr_mean_db"):
        return _undecided("no separation baseline (not an MCA experiment with a val split)")
    lines, bad = [], []
    for T in target["T"]:
        mine, base = view.components(target["method"], T, "psnr_db"), view.record(
            key, T, "psnr_mean_db")
        if mine is None or base is None:
            bad.append(f"T={T} not run")
            continue
        mean, best = float(np.mean(mine)), base["value"]
        setting = "/".join(f"{a:g}" for a in base["setting"]["alpha"])
        lines.append(f"T={T}: {mean:.2f} dB vs SALSA (alpha {setting}, mu "
                     f"{base['setting']['mu']:g}, best validation PSNR) {best:.2f} dB")
        if not mean >= best:
            bad.append(f"T={T} (by {best - mean:.2f} dB)")
    return Verdict("missed" if bad else "met",
                   "; ".join(lines) + (f"; missed at {', '.join(bad)}" if bad else ""), {})


def _psnr_above(target: dict, view: ResultsView, facts: Facts) -> Verdict:
    """``method``'s PSNR is above ``other``'s for every component at every depth ``T``."""
    if not view.distinct("method", metric="psnr_db"):
        return _undecided("no separation (not an MCA experiment)")
    lines, bad = [], []
    for T in target["T"]:
        mine = view.components(target["method"], T, "psnr_db")
        other = view.components(target["other"], T, "psnr_db")
        if mine is None or other is None:
            bad.append(f"T={T} not run")
            continue
        for i, (a, b) in enumerate(zip(mine, other, strict=True)):
            lines.append(f"T={T} component {i}: {a:.3g} dB vs {b:.3g} dB")
            if not a > b:
                bad.append(f"T={T} component {i}")
    return Verdict("missed" if bad else "met",
                   "; ".join(lines) + (f" (not above at {', '.join(bad)})" if bad else ""), {})


def _lowest_classification_error(target: dict, view: ResultsView, facts: Facts) -> Verdict:
    """``method``'s codes give the lowest expert-classifier error of all methods, for every
    task at every depth."""
    metrics = view.metrics(CLASSIFICATION_PREFIX)
    if not metrics:
        return _undecided("no class labels in this data set")
    lines, bad = [], []
    for metric in metrics:
        task = metric.removeprefix(CLASSIFICATION_PREFIX)
        curves = {m: view.curve(m, metric)
                  for m in view.distinct("method", metric=metric) if m != "exact"}
        for T in sorted({T for curve in curves.values() for T in curve}):
            errs = {m: curve[T] for m, curve in curves.items() if T in curve}
            best = min(errs.values())
            mine = errs.get(target["method"])
            if not (mine is not None and mine <= best):
                bad.append(f"{task} T={T}")
            lines.append(f"{task} T={T}: {mine:.3g} vs best other "
                         f"{min(e for m, e in errs.items() if m != target['method']):.3g}")
    return Verdict("missed" if bad else "met",
                   "; ".join(lines) + (f" (not lowest at {', '.join(bad)})" if bad else ""), {})


def _training_never_hurts(target: dict, view: ResultsView, facts: Facts) -> Verdict:
    """No trained model is worse on validation than its start."""
    worse = {}
    for method in view.distinct("method", metric="training_kept_error"):
        for T, kept in view.curve(method, "training_kept_error", split="val").items():
            start = view.value(method, T, "training_start_error", split="val")
            if start is not None and kept > start:
                worse[f"{method}_T{T}"] = (start, kept)
    count = facts.trained
    # The trainer keeps the best validation epoch, the start included, so this holds by
    # construction; it checks that the run's stored models are those epochs.
    return Verdict("missed" if worse else "met",
                   f"{count - len(worse)} of {count} trained models are at least as good on "
                   "validation as their start (the best-epoch selection)"
                   + "".join(f"; {n}: {a:.4g} -> {b:.4g}" for n, (a, b) in worse.items()), {})


# The check of each target kind (the kinds of lsalsa.workflow.config.TARGET_KINDS).
CHECKS: dict[str, Callable[[dict, ResultsView, Facts], Verdict]] = {
    "iterations_to_match": _iterations_to_match,
    "rmse_ratio": _rmse_ratio,
    "psnr_mean_at_least": _psnr_mean_at_least,
    "training_never_hurts": _training_never_hurts,
    "rmse_below": _rmse_below,
    "lowest_classification_error": _lowest_classification_error,
    "time_ratio": _time_ratio,
    "psnr_above": _psnr_above,
}

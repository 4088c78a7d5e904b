"""The results of a run as a tidy table: one record per measured number (issue 22, item 3).

:func:`tidy_records` flattens the nested ``results.json`` dict into records with the keys of
:data:`KEYS`::

    experiment  the run's name
    split       "test", "val" (numbers measured on validation) or "train" (duality gaps)
    source      "all", or the package of the test photographs (MCA, per source)
    method      a method ("fista", "salsa", "lsalsa", ...), "exact" (the optimal codes), a
                separation baseline ("salsa_best_psnr", "salsa_best_psnr_any_alpha") or
                "timing" (how every time was measured)
    T           the depth (int), or None for the exact codes and the timing
    setting     the compact hyperparameters it ran at ({"alpha": [...], "mu": 0.5, ...};
                None values dropped), None when there are none
    metric      see :data:`METRICS`
    component   0, 1, ... for a per-component number (PSNR), else None
    value       a finite float

What each part of ``results.json`` becomes:

- ``methods[m][T]``: code_rmse (mean), code_rmse_median, sparsity (mean), seconds; the
  validation numbers in the learned methods' hyper (``start_val_rmse``, ...) as split "val".
- ``dense[m]``: the classic step's test curve per T (dense_code_rmse, dense_sparsity), at the
  setting chosen on validation for each T; it is computed apart from ``methods``, so its
  numbers differ from code_rmse in the last digits.
- ``classification.tasks[task]``: classification_error_<task> per method and T, and the
  error on the optimal codes (method "exact").
- ``separation[m][T]`` (or ``psnr[m][T]`` in runs without it), per source too: psnr_db,
  psnr_per_mixture_db, psnr_per_mixture_std_db per component, and mixtures (the count).
- ``optimal``: the exact codes' sparsity, seconds (SPAMS), duality gaps per split
  (duality_gap_<statistic>) and separation; the separation baselines per T, with their
  code_rmse, psnr_mean_db and the validation psnr_mean_db (split "val") that chose them.
- ``match[ref]``: per classic method at LSALSA's depth ``ref`` (setting {"matches":
  "lsalsa"}): matched (1, or 0 when not reached within the dense grid), iterations_to_match
  (skipped when not reached), timed_at, seconds_to_match and time_ratio_to_match.
  ``lsalsa_rmse`` and ``lsalsa_seconds`` are copies of LSALSA's own records and are not
  repeated.
- ``timing``: batch_size, threads and repeats (method "timing", the device and dtype as its
  setting).
- ``training[f"{m}_T{T}"]``: the trainer's validation error at its start
  (training_start_error) and at the epoch it kept (training_kept_error), split "val": code
  RMSE, or for the separation objective the components' RMSE.

Left out, as descriptions rather than measurements: the run's sizes and config, provenance,
the targets' verdicts, the rest of the training records (epochs, stop reason, loss, time),
the classifiers' settings and item counts, the timing's wording. The report's tables, its
figures and the targets' checks select from the records through
:class:`~lsalsa.workflow.results_view.ResultsView`. Left out as copies:
``psnr`` beside ``separation`` (and a baseline's ``psnr`` beside its ``separation``), and
``match``'s LSALSA numbers.

A number that is not finite (None, NaN, a string) is not a record: :func:`tidy_records` puts
it in ``skipped`` when given a list, so nothing is lost silently. :func:`write_tidy` and
:func:`read_tidy` store the records as JSON Lines.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from ..errors import InputError
from ..io import write_text

#: The keys of every record, in the order they are written.
KEYS = ("experiment", "split", "source", "method", "T", "setting", "metric", "component",
        "value")
SPLITS = ("test", "val", "train")

#: results.json's names of a method row's numbers -> the table's metric.
ROW_METRICS = {"rmse_mean": "code_rmse", "rmse_median": "code_rmse_median",
               "sparsity_mean": "sparsity", "seconds": "seconds"}
#: separation_quality's per-component lists -> the table's metric.
SEPARATION_METRICS = {"psnr": "psnr_db", "psnr_per_mixture": "psnr_per_mixture_db",
                      "psnr_per_mixture_std": "psnr_per_mixture_std_db"}
#: The validation numbers a learned method's hyper holds -> the table's metric (split "val").
VAL_METRICS = {"start_val_rmse": "start_code_rmse", "search_val_rmse": "search_code_rmse",
               "start_val_psnr_mean": "start_psnr_mean_db"}
MATCH_METRICS = {"iterations": "iterations_to_match", "timed_at": "timed_at",
                 "seconds": "seconds_to_match", "time_ratio": "time_ratio_to_match"}
BASELINE_METRICS = {"rmse_mean": "code_rmse", "psnr_mean": "psnr_mean_db"}
TRAINING_METRICS = {"initial_val_rmse": "training_start_error",
                    "val_rmse": "training_kept_error"}
GAP_PREFIX = "duality_gap_"
TIMING_METRICS = ("batch_size", "threads", "repeats")


def _finite(value) -> float | None:
    """``value`` as a float when it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _setting(hyper) -> dict | None:
    """The hyperparameters a number was measured at, compact: None values and the validation
    numbers (records of their own) dropped; None when nothing is left."""
    if not isinstance(hyper, dict):
        return None
    kept = {k: v for k, v in hyper.items()
            if v is not None and k not in VAL_METRICS and "val_" not in k}
    return kept or None


class _Table:
    """Collects the records of one experiment, and the numbers that could not be records."""

    def __init__(self, experiment: str, skipped: list | None):
        self.experiment = experiment
        self.records: list[dict] = []
        self.skipped = skipped if skipped is not None else []

    def add(self, method: str, T, setting, metric: str, value, *, split: str = "test",
            source: str = "all", component: int | None = None) -> None:
        record = {"experiment": self.experiment, "split": split, "source": source,
                  "method": method, "T": None if T is None else int(T), "setting": setting,
                  "metric": metric, "component": component, "value": _finite(value)}
        if record["value"] is None:
            self.skipped.append({**record, "value": value})
        else:
            self.records.append(record)

    def separation(self, method: str, T, setting, quality: dict) -> None:
        """separation_quality's numbers, for the whole test set and per source."""
        scopes = [("all", quality), *sorted((quality.get("by_source") or {}).items())]
        for source, scores in scopes:
            for key, metric in SEPARATION_METRICS.items():
                for i, v in enumerate(scores.get(key) or []):
                    self.add(method, T, setting, metric, v, source=source, component=i)
            if "count" in scores:
                self.add(method, T, setting, "mixtures", scores["count"], source=source)

    def psnr(self, method: str, T, setting, values) -> None:
        """A PSNR per component, from a run without the separation section."""
        for i, v in enumerate(values or []):
            self.add(method, T, setting, "psnr_db", v, component=i)


def tidy_records(results: dict, experiment: str, skipped: list | None = None) -> list[dict]:
    """The records of ``results`` (the ``results.json`` dict of the run ``experiment``); the
    numbers that are not finite go to ``skipped`` (when given), with their record."""
    try:
        return _collect(_Table(experiment, skipped), results)
    except (AttributeError, TypeError, KeyError) as exc:  # a section of another shape
        raise InputError(f"the results of {experiment} are not shaped as results.json "
                         f"({type(exc).__name__}: {exc})") from exc


def _collect(table: _Table, results: dict) -> list[dict]:
    methods = results.get("methods") or {}
    settings = {(m, str(T)): _setting(row.get("hyper"))
                for m, by_T in methods.items() for T, row in by_T.items()}
    _methods(table, methods, settings)
    _dense(table, results.get("dense") or {})
    _classification(table, results.get("classification") or {}, settings)
    separation, psnr = results.get("separation") or {}, results.get("psnr") or {}
    for m, by_T in separation.items():
        for T, quality in (by_T or {}).items():
            table.separation(m, T, settings.get((m, T)), quality)
    for m, by_T in psnr.items():  # only what the separation section does not hold
        if m != "optimal" and m not in separation:
            for T, values in by_T.items():
                table.psnr(m, T, settings.get((m, T)), values)
    _optimal(table, results.get("optimal") or {}, results.get("alphas"), psnr)
    _match(table, results.get("match") or {})
    _timing(table, results.get("timing") or {})
    _training(table, results.get("training") or {}, settings)
    return table.records


def _methods(table: _Table, methods: dict, settings: dict) -> None:
    for m, by_T in methods.items():
        for T, row in by_T.items():
            setting = settings[(m, T)]
            for key, value in row.items():
                if key != "hyper":
                    table.add(m, T, setting, ROW_METRICS.get(key, key), value)
            for key, value in (row.get("hyper") or {}).items():
                if key in VAL_METRICS or "val_" in key:
                    table.add(m, T, setting, VAL_METRICS.get(key, key), value, split="val")


def _dense(table: _Table, dense: dict) -> None:
    for m, curve in dense.items():
        hyper = curve.get("hyper") or [None] * len(curve.get("T", []))
        for key in ("rmse_mean", "sparsity_mean"):
            for T, value, h in zip(curve.get("T", []), curve.get(key) or [], hyper, strict=False):
                table.add(m, T, _setting(h), "dense_" + ROW_METRICS[key], value)


def _classification(table: _Table, classification: dict, settings: dict) -> None:
    for task, info in (classification.get("tasks") or {}).items():
        metric = f"classification_error_{task}"
        for m, by_T in (info.get("errors") or {}).items():
            for T, value in by_T.items():
                table.add(m, T, settings.get((m, T)), metric, value)
        if "optimal_error" in info:
            table.add("exact", None, None, metric, info["optimal_error"])


def _optimal(table: _Table, optimal: dict, alphas, psnr: dict) -> None:
    """The exact codes' numbers, and the separation baselines'."""
    setting = {"alpha": alphas} if alphas is not None else None
    table.add("exact", None, setting, "sparsity", optimal.get("sparsity_mean"))
    if "seconds" in optimal:
        table.add("exact", None, setting, "seconds", optimal["seconds"])
    for split, stats in (optimal.get("gap") or {}).items():
        for stat, value in (stats or {}).items():
            table.add("exact", None, setting, GAP_PREFIX + stat, value, split=split)
    if optimal.get("separation"):
        table.separation("exact", None, setting, optimal["separation"])
    elif psnr.get("optimal"):
        table.psnr("exact", None, setting, psnr["optimal"])
    for method, by_T in optimal.items():
        if not method.startswith("salsa_best_psnr"):
            continue
        for T, row in (by_T or {}).items():
            chosen = _setting({k: row.get(k) for k in ("alpha", "mu")})
            for key, metric in BASELINE_METRICS.items():
                if key in row:
                    table.add(method, T, chosen, metric, row[key])
            if "val_psnr_mean" in row:
                table.add(method, T, chosen, "psnr_mean_db", row["val_psnr_mean"], split="val")
            if row.get("separation"):
                table.separation(method, T, chosen, row["separation"])
            else:
                table.psnr(method, T, chosen, row.get("psnr"))


def _match(table: _Table, match: dict) -> None:
    for ref, entry in match.items():
        for method, row in entry.items():
            if isinstance(row, dict):  # the classic methods (the rest: LSALSA's own copies)
                # "never reached" is a finding, not a missing number: matched 0
                table.add(method, ref, {"matches": "lsalsa"}, "matched",
                          float(row.get("iterations") is not None))
                for key, value in row.items():
                    table.add(method, ref, {"matches": "lsalsa"},
                              MATCH_METRICS.get(key, key), value)


def _timing(table: _Table, timing: dict) -> None:
    setting = {k: timing[k] for k in ("device", "dtype") if k in timing} or None
    for key in TIMING_METRICS:
        if key in timing:
            table.add("timing", None, setting, key, timing[key])


def _training(table: _Table, training: dict, settings: dict) -> None:
    for name, record in training.items():
        method, _, T = name.rpartition("_T")
        for key, metric in TRAINING_METRICS.items():
            table.add(method, T, settings.get((method, T)), metric, record.get(key), split="val")


# -- results.jsonl -------------------------------------------------------------------------------

def write_tidy(path: str | os.PathLike, records: list[dict]) -> None:
    """``records`` as JSON Lines (one record a line, keys in :data:`KEYS` order), atomically;
    a record that :func:`check_record` refuses (a value not finite, ...) writes nothing."""
    lines = []
    for i, record in enumerate(records, 1):
        check_record(record, f"record {i} for {path}")
        lines.append(json.dumps({k: record[k] for k in KEYS}, allow_nan=False))
    write_text(path, "".join(line + "\n" for line in lines))


def read_tidy(path: str | os.PathLike) -> list[dict]:
    """The records of a ``results.jsonl``; a line that is not a valid record is one
    InputError naming the file and the line."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InputError(f"cannot read the results table {path}: {exc}") from exc
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        where = f"{path} line {number}"
        try:
            record = json.loads(line, parse_constant=_refuse_constant)
        except ValueError as exc:
            raise InputError(f"{where} is not JSON: {exc}") from exc
        check_record(record, where)
        records.append(record)
    return records


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a finite number")


def check_record(record, where: str) -> None:
    """One-line InputError unless ``record`` has exactly :data:`KEYS` with their types."""
    if not isinstance(record, dict):
        raise InputError(f"{where} is not a results record (not a JSON object)")
    if set(record) != set(KEYS):
        missing, extra = sorted(set(KEYS) - set(record)), sorted(set(record) - set(KEYS))
        raise InputError(f"{where} is not a results record (missing {missing or 'none'}, "
                         f"unknown {extra or 'none'})")
    problems = [k for k in ("experiment", "source", "method", "metric")
                if not isinstance(record[k], str) or not record[k]]
    if record["split"] not in SPLITS:
        problems.append("split")
    for key in ("T", "component"):
        if record[key] is not None and (isinstance(record[key], bool)
                                        or not isinstance(record[key], int)):
            problems.append(key)
    if record["setting"] is not None and not isinstance(record["setting"], dict | str):
        problems.append("setting")
    value = record["value"]
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value)):
        problems.append("value")
    if problems:
        raise InputError(f"{where} is not a results record (bad {', '.join(problems)})")

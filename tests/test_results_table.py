"""The results as a tidy table (lsalsa.workflow.results_table): records, pivots, JSON Lines."""

from __future__ import annotations

import json
import math

import pytest

from lsalsa.errors import InputError
from lsalsa.workflow.report.tables import tables
from lsalsa.workflow.results_table import KEYS, read_tidy, tidy_records, write_tidy

SOURCES = ("lomiri", "plasma")


def _quality(base: float, sources=SOURCES) -> dict:
    """separation_quality's shape, with distinct numbers."""
    def scores(b: float, count: int) -> dict:
        return {"psnr": [b, b + 0.1], "psnr_per_mixture": [b + 0.2, b + 0.3],
                "psnr_per_mixture_std": [b / 10, b / 10 + 0.01], "count": count}

    out = scores(base, 10)
    if sources:
        out["by_source"] = {s: scores(base + 1 + i, 4 + 2 * i) for i, s in enumerate(sources)}
    return out


def _mca() -> dict:
    """A small results.json of MCA shape: one depth, two sources, one separation baseline."""
    hypers = {"fista": {"alpha": [0.1, 0.2], "mu": None},
              "salsa": {"alpha": [0.1, 0.2], "mu": 0.5},
              "lsalsa": {"alpha": [0.1, 0.2], "mu": 0.5, "lr": 0.1, "lr_decay": 0.0,
                         "start_val_rmse": 0.3, "search_val_rmse": None}}
    rmse = {"fista": 0.27, "salsa": 0.15, "lsalsa": 0.12}
    methods = {m: {"1": {"rmse_mean": rmse[m], "rmse_median": rmse[m] - 0.01,
                         "sparsity_mean": rmse[m] + 0.5, "seconds": rmse[m] / 10,
                         "hyper": hypers[m]}} for m in hypers}
    psnr_base = {"fista": 14.0, "salsa": 21.0, "lsalsa": 22.0}
    separation = {m: {"1": _quality(b)} for m, b in psnr_base.items()}
    baseline = {"alpha": [0.1, 0.2], "mu": 2.0, "psnr": [20.0, 20.1], "psnr_mean": 20.05,
                "rmse_mean": 0.18, "val_psnr_mean": 22.3, "separation": _quality(20.0)}
    return {
        "name": "mca-small", "kind": "mca", "depths": [1], "dense_max": 2,
        "block_sizes": [4, 4], "alphas": [0.1, 0.2],
        "methods": methods,
        "dense": {m: {"T": [1, 2], "rmse_mean": [rmse[m] + 0.001, rmse[m] - 0.02],
                      "sparsity_mean": [0.4, 0.45],
                      "hyper": [hypers[m], {"alpha": [0.2, 0.2], "mu": hypers[m]["mu"]}]}
                  for m in ("fista", "salsa")},
        "classification": {"tasks": {"digits": {
            "classifier": {"C": 10.0, "max_iter": 100, "model": "m", "projection": None,
                           "seed": 0},
            "errors": {m: {"1": e} for m, e in (("fista", 0.2), ("salsa", 0.01),
                                                 ("lsalsa", 0.001))},
            "n": 10, "optimal_error": 0.0}}},
        "psnr": {**{m: {"1": q["1"]["psnr"]} for m, q in separation.items()},
                 "optimal": [21.5, 21.6]},
        "separation": separation,
        "optimal": {"sparsity_mean": 0.79, "seconds": None,
                    "gap": {s: {"max": 1e-5 * (i + 1), "median": 1e-6 * (i + 1)}
                            for i, s in enumerate(("test", "train", "val"))},
                    "separation": _quality(21.5), "psnr": [21.5, 21.6],
                    "salsa_best_psnr": {"1": baseline}},
        "match": {"1": {"lsalsa_rmse": 0.12, "lsalsa_seconds": 0.012,
                        "fista": {"iterations": None, "timed_at": 2, "seconds": 0.05,
                                  "time_ratio": 4.2},
                        "salsa": {"iterations": 2, "timed_at": 2, "seconds": 0.02,
                                  "time_ratio": 1.7}}},
        "timing": {"device": "cpu", "dtype": "float32", "batch_size": 64, "threads": 1,
                   "repeats": 5, "statistic": "median", "classic_timing": "text"},
        "targets": [], "config": {}, "provenance": {},
        "training": {"lsalsa_T1": {"initial_val_rmse": 0.3, "val_rmse": 0.21, "epochs": 4,
                                   "best_epoch": 3, "stopped": "max_epochs", "loss": 1.5,
                                   "seconds": 2.5}},
    }


def _sc() -> dict:
    """A small results.json of sparse-coding shape (no separation), as the shipped
    fashion-mnist config writes it: LISTA and LSALSA learned, two depths."""
    methods = {m: {str(T): {"rmse_mean": r / T, "rmse_median": r / T, "sparsity_mean": 0.9,
                            "seconds": 0.01 * T,
                            "hyper": {"alpha": [0.15], "mu": 10.0 if m != "fista" else None}}
                   for T in (1, 2)}
               for m, r in (("fista", 0.4), ("salsa", 0.3), ("lista", 0.2), ("lsalsa", 0.1))}
    return {
        "name": "sc-small", "kind": "sc", "depths": [1, 2], "dense_max": 2, "block_sizes": [8],
        "alphas": [0.15], "methods": methods,
        "dense": {m: {"T": [1, 2], "rmse_mean": [0.41, 0.2], "sparsity_mean": [0.9, 0.8],
                      "hyper": [{"alpha": [0.15], "mu": None}] * 2} for m in ("fista", "salsa")},
        "classification": {"tasks": {"classes": {
            "errors": {m: {"1": 0.5, "2": 0.4} for m in methods}, "n": 10,
            "optimal_error": 0.1}}},
        "psnr": None, "separation": None,
        "optimal": {"sparsity_mean": 0.95, "gap": {"test": {"max": 1e-5}}},
        "match": {"1": {"lsalsa_rmse": 0.1, "lsalsa_seconds": 0.01,
                        "fista": {"iterations": 2, "timed_at": 2, "seconds": 0.02,
                                  "time_ratio": 2.0},
                        "salsa": {"iterations": None, "timed_at": 2, "seconds": 0.02,
                                  "time_ratio": float("nan")}}},
        "timing": {"device": "cpu", "dtype": "float32", "batch_size": 64, "threads": 1,
                   "repeats": 3},
        "targets": [], "config": {}, "provenance": {},
    }


def _one(records, **where) -> float:
    """The value of the single record matching ``where`` (T and component default to their
    own keys: give them explicitly)."""
    hits = [r for r in records if all(r[k] == v for k, v in where.items())]
    assert len(hits) == 1, (where, hits)
    return hits[0]["value"]


SETTINGS = ("alpha", "mu", "lr", "lr_decay", "T")  # settings and depths: keys, not values


def _numbers(node) -> list[float]:
    """Every finite number under ``node`` (bools, hyperparameters and depths aside)."""
    if isinstance(node, dict):
        return [v for k, x in node.items() if k not in SETTINGS for v in _numbers(x)]
    if isinstance(node, list):
        return [v for x in node for v in _numbers(x)]
    if isinstance(node, int | float) and not isinstance(node, bool) and math.isfinite(node):
        return [float(node)]
    return []


# -- the records ---------------------------------------------------------------------------------

def test_mca_records_are_the_expected_ones():
    results, skipped = _mca(), []
    records = tidy_records(results, "mca-small", skipped)
    assert all(tuple(r) == KEYS for r in records)
    # methods: 3 x 4 test numbers + LSALSA's validation start; dense: 2 methods x 2 T x 2;
    # classification: 3 + the exact codes; separation: 3 methods x 3 scopes x (2 components
    # x 3 metrics + the count); exact codes: sparsity, 3 splits x 2 gap statistics and their
    # separation (21); the baseline: code_rmse, psnr_mean_db, its validation psnr_mean_db and
    # its separation (21); match: 3 (FISTA never reached) + 4, and whether each matched (2);
    # timing: 3; training: the start and the kept epoch's validation RMSE.
    assert len(records) == 13 + 8 + 4 + 63 + (1 + 6 + 21) + (3 + 21) + 9 + 3 + 2 == 154
    # Skipped, never lost: LSALSA's unrecorded search RMSE, SPAMS's time, FISTA's unreached
    # iterations.
    assert sorted((s["method"], s["metric"]) for s in skipped) == [
        ("exact", "seconds"), ("fista", "iterations_to_match"), ("lsalsa", "search_code_rmse")]
    assert all(s["value"] is None for s in skipped)
    # No two records share every key but the value.
    keys = [json.dumps([r[k] for k in KEYS[:-1]], sort_keys=True) for r in records]
    assert len(set(keys)) == len(keys)

    assert _one(records, method="lsalsa", T=1, metric="code_rmse") == 0.12
    assert _one(records, method="lsalsa", T=1, metric="start_code_rmse", split="val") == 0.3
    assert _one(records, method="lsalsa", T=1, metric="code_rmse")  # split test by default
    lsalsa = [r for r in records if r["method"] == "lsalsa" and r["metric"] == "code_rmse"]
    assert lsalsa[0]["setting"] == {"alpha": [0.1, 0.2], "mu": 0.5, "lr": 0.1, "lr_decay": 0.0}
    assert lsalsa[0]["split"] == "test" and lsalsa[0]["source"] == "all"
    fista = [r for r in records if r["method"] == "fista" and r["metric"] == "code_rmse"]
    assert fista[0]["setting"] == {"alpha": [0.1, 0.2]}  # mu None dropped
    sep = results["separation"]["lsalsa"]["1"]
    assert _one(records, method="lsalsa", source="plasma", metric="psnr_db", component=1) == (
        sep["by_source"]["plasma"]["psnr"][1])
    assert _one(records, method="lsalsa", source="lomiri", metric="mixtures") == 4.0
    assert _one(records, method="exact", split="train", metric="duality_gap_max") == 2e-5
    assert _one(records, method="salsa_best_psnr", split="val", metric="psnr_mean_db") == 22.3
    baseline = [r for r in records if r["method"] == "salsa_best_psnr"]
    assert {json.dumps(r["setting"]) for r in baseline} == {'{"alpha": [0.1, 0.2], "mu": 2.0}'}
    assert _one(records, method="salsa", metric="iterations_to_match") == 2.0
    assert _one(records, method="fista", metric="time_ratio_to_match") == 4.2
    assert _one(records, method="fista", metric="matched") == 0.0
    assert _one(records, method="salsa", metric="matched") == 1.0
    assert _one(records, method="lsalsa", metric="training_kept_error", split="val") == 0.21
    assert _one(records, method="timing", metric="threads") == 1.0
    assert _one(records, method="fista", T=2, metric="dense_code_rmse") == 0.25
    assert _one(records, method="exact", metric="classification_error_digits") == 0.0
    assert {r["T"] for r in records if r["method"] == "exact"} == {None}


def test_every_number_of_the_covered_sections_is_a_record_or_skipped():
    """Nothing lost: every finite number of the sections the table covers is a record's value,
    but for the documented copies and the classifiers' description."""
    results = _mca()
    # whether each method matched LSALSA is read from the match, not a number there
    values = sorted(r["value"] for r in tidy_records(results, "x") if r["metric"] != "matched")
    copies = [*_numbers(results["psnr"]), *_numbers(results["optimal"]["psnr"]),
              *_numbers(results["optimal"]["salsa_best_psnr"]["1"]["psnr"]),
              results["match"]["1"]["lsalsa_rmse"], results["match"]["1"]["lsalsa_seconds"]]
    training = results["training"]["lsalsa_T1"]
    described = [*_numbers(results["classification"]["tasks"]["digits"]["classifier"]),
                 results["classification"]["tasks"]["digits"]["n"],
                 *(training[k] for k in ("epochs", "best_epoch", "loss", "seconds"))]
    covered = [*_numbers({k: results[k] for k in ("methods", "dense", "classification",
                                                   "psnr", "separation", "optimal", "match",
                                                   "timing", "training")})]
    for number in copies + described:
        covered.remove(float(number))
    assert sorted(covered) == values


def test_sc_records_have_no_separation():
    skipped = []
    records = tidy_records(_sc(), "sc-small", skipped)
    # methods: 4 x 2 T x 4; dense: 2 x 2 x 2; classification: 4 x 2 + 1; exact: sparsity +
    # one gap; match: 4 + 2 (SALSA not reached, its ratio NaN) and whether each matched;
    # timing: 3.
    assert len(records) == 32 + 8 + 9 + 2 + 8 + 3 == 62
    assert [(s["method"], s["metric"]) for s in skipped] == [
        ("salsa", "iterations_to_match"), ("salsa", "time_ratio_to_match")]
    assert math.isnan(skipped[1]["value"])
    assert not any(r["metric"].startswith("psnr") or r["metric"] == "mixtures"
                   for r in records)
    assert {r["source"] for r in records} == {"all"}
    assert _one(records, method="lista", T=2, metric="code_rmse") == 0.1
    assert _one(records, method="exact", metric="classification_error_classes") == 0.1


def test_a_section_of_another_shape_is_one_input_error():
    results = _sc()
    results["methods"]["lista"]["1"] = [0.1]
    with pytest.raises(InputError, match=r"not shaped as results\.json"):
        tidy_records(results, "sc-small")


# -- pivots reproduce the report -----------------------------------------------------------------

def _pivot(records, metric: str, **where) -> dict:
    """{(method, T): value} of ``metric`` on the test split over all sources."""
    where = {"split": "test", "source": "all", "component": None, **where}
    return {(r["method"], r["T"]): r["value"] for r in records
            if r["metric"] == metric and all(r[k] == v for k, v in where.items())}


@pytest.mark.parametrize("make", [_mca, _sc])
def test_pivots_reproduce_the_report_tables(make):
    results = make()
    records = tidy_records(results, results["name"])
    by_name = {t.name: t for t in tables(results)}
    names = {"FISTA": "fista", "SALSA": "salsa", "LISTA": "lista", "LSALSA": "lsalsa"}
    for table, metric in (("rmse", "code_rmse"), ("sparsity", "sparsity"), ("time", "seconds")):
        pivot = _pivot(records, metric)
        for row in by_name[table].rows:
            assert row[1:] == [pivot[(names[row[0]], T)] for T in results["depths"]], table
    match = _pivot(records, "iterations_to_match")
    for ref, _ref_rmse, method, _grid, iterations in by_name["iterations_to_match"].rows:
        assert match.get((names[method], ref)) == (None if iterations is None
                                                   else float(iterations))
    if results["kind"] == "mca":
        # The PSNR table (per method and component) and the baseline table's means.
        for row in by_name["psnr"].rows:
            name, part = row[0].rsplit(" ", 1)
            pivot = _pivot(records, "psnr_db", component=0 if part == "digit" else 1)
            assert row[1:] == [pivot[(names[name], T)] for T in results["depths"]]
        baseline = by_name["psnr_baseline"].rows[0]
        mean = _pivot(records, "psnr_mean_db")[("salsa_best_psnr", 1)]
        assert baseline[4] == mean
        lsalsa = [r["value"] for r in records if r["method"] == "lsalsa"
                  and r["metric"] == "psnr_db" and r["source"] == "all"]
        assert baseline[-1] == pytest.approx(sum(lsalsa) / len(lsalsa))


# -- JSON Lines ----------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [_mca, _sc])
def test_write_and_read_round_trip(tmp_path, make):
    results = make()
    records = tidy_records(results, results["name"])
    path = tmp_path / "results.jsonl"
    write_tidy(path, records)
    assert len(path.read_text().splitlines()) == len(records)
    assert read_tidy(path) == records
    assert [p.name for p in tmp_path.iterdir()] == ["results.jsonl"]  # no temporary left


@pytest.mark.parametrize("edit, message", [
    (lambda r: r.update(value=None), "line 3 is not a results record (bad value)"),
    (lambda r: r.update(split="training"), "line 3 is not a results record (bad split)"),
    (lambda r: r.update(T="1"), "line 3 is not a results record (bad T)"),
    (lambda r: r.pop("metric"), "missing ['metric']"),
    (lambda r: r.update(extra=1), "unknown ['extra']"),
])
def test_a_corrupted_record_is_refused_in_one_line(tmp_path, edit, message):
    records = tidy_records(_sc(), "sc-small")
    path = tmp_path / "results.jsonl"
    write_tidy(path, records)
    lines = path.read_text().splitlines()
    record = json.loads(lines[2])
    edit(record)
    lines[2] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as caught:
        read_tidy(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_broken_json_and_nan_are_refused_with_the_line(tmp_path):
    path = tmp_path / "results.jsonl"
    write_tidy(path, tidy_records(_sc(), "sc-small"))
    text = path.read_text().splitlines()
    nan = text[0].replace('"value": ', '"value": NaN, "x": ')
    for bad in ('{"experiment": "sc-small", "spl', nan):
        path.write_text("\n".join([text[0], bad]) + "\n")
        with pytest.raises(InputError, match=r"results.jsonl line 2 is not JSON"):
            read_tidy(path)


def test_write_refuses_a_value_that_is_not_finite_and_writes_nothing(tmp_path):
    records = tidy_records(_sc(), "sc-small")
    records[5] = {**records[5], "value": float("inf")}
    path = tmp_path / "results.jsonl"
    with pytest.raises(InputError, match=r"record 6 .*\(bad value\)"):
        write_tidy(path, records)
    assert list(tmp_path.iterdir()) == []


def test_a_view_selects_one_number_a_curve_or_the_components():
    """ResultsView: the selections the target checks read, from the records alone."""
    from lsalsa.workflow.results_view import ResultsView

    results = _mca()
    view = ResultsView.of(results)
    assert view.value("lsalsa", "1", "code_rmse") == 0.12
    assert view.value("lsalsa", 1, "nothing") is None
    dense = results["dense"]["fista"]
    assert view.curve("fista", "dense_code_rmse") == dict(zip(dense["T"], dense["rmse_mean"],
                                                               strict=True))
    assert view.components("lsalsa", 1, "psnr_db") == results["separation"]["lsalsa"]["1"][
        "psnr"]
    assert view.components("lsalsa", 1, "psnr_db", source="plasma") == (
        results["separation"]["lsalsa"]["1"]["by_source"]["plasma"]["psnr"])
    assert view.metrics("classification_error_") == ["classification_error_digits"]
    assert view.distinct("method", metric="matched") == ["fista", "salsa"]
    assert view.distinct("T", metric="matched") == [int(T) for T in results["match"]]
    assert view.distinct("source", method="lsalsa", T=1, metric="psnr_db") == [
        "all", *results["separation"]["lsalsa"]["1"]["by_source"]]
    with pytest.raises(InputError, match="two records"):
        ResultsView([*view.records, view.records[0]])

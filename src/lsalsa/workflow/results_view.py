"""The tidy records of one run (:mod:`lsalsa.workflow.results_table`), looked up as the target
checks, the report's tables and its figures read them: one number, a curve over the depths,
or one number per component."""

from __future__ import annotations

from ..errors import InputError
from .results_table import tidy_records

# The keys that make a record one number.
_KEY = ("split", "source", "method", "T", "metric", "component")


class ResultsView:
    """Selections of the records of one run (``records``, unique by :data:`_KEY`); what is
    not recorded (a number that was never measured, or not finite) reads as None."""

    def __init__(self, records: list[dict]):
        self.records = records
        self._values = {tuple(r[k] for k in _KEY): r for r in records}
        if len(self._values) != len(records):  # tidy_records never makes two
            raise InputError("two records of the same number: give the records of one run")

    @classmethod
    def of(cls, results: dict) -> ResultsView:
        """The view of a ``results.json`` dict."""
        return cls(tidy_records(results, results.get("name") or "run"))

    def record(self, method: str, T: int | str | None, metric: str, *, split: str = "test",
               source: str = "all", component: int | None = None) -> dict | None:
        T = None if T is None else int(T)
        return self._values.get((split, source, method, T, metric, component))

    def value(self, method: str, T: int | str | None, metric: str, **where) -> float | None:
        record = self.record(method, T, metric, **where)
        return None if record is None else record["value"]

    def curve(self, method: str, metric: str, *, split: str = "test",
              source: str = "all") -> dict[int, float]:
        """``{T: value}`` of ``method``'s ``metric`` over the depths, in the records' order."""
        return {r["T"]: r["value"] for r in self.records
                if r["method"] == method and r["metric"] == metric and r["split"] == split
                and r["source"] == source and r["component"] is None and r["T"] is not None}

    def components(self, method: str, T: int | str | None, metric: str,
                   **where) -> list[float] | None:
        """The value of each component 0, 1, ... (None when component 0 has none)."""
        values = []
        while (value := self.value(method, T, metric, component=len(values), **where)) \
                is not None:
            values.append(value)
        return values or None

    def metrics(self, prefix: str) -> list[str]:
        """The metrics whose names start with ``prefix``, in the order first recorded."""
        return list(dict.fromkeys(r["metric"] for r in self.records
                                  if r["metric"].startswith(prefix)))

    def distinct(self, key: str, **where) -> list:
        """The values of ``key`` (a method, a depth, a source, ...) among the records that
        match every ``where`` (``metric="matched"``), in the order first recorded."""
        return list(dict.fromkeys(r[key] for r in self.records
                                  if all(r[k] == v for k, v in where.items())))

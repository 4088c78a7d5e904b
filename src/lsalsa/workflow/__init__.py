"""The workflow layer: everything that touches files, progress output and configs, over the
numerical core (:mod:`lsalsa.core`).

- :mod:`.progress` (one sink for bars and log lines), :mod:`.rundir` (one run-directory
  object: config, provenance, step markers, stale temporaries) and :mod:`.config` (typed,
  frozen experiment configs);
- the stores and resumable loops: :mod:`.code_sets`, :mod:`.dictionaries`, :mod:`.training_run`
  and :mod:`.checkpoint`, :mod:`.search`, :mod:`.analysis`; :mod:`.training_data` (the pairs
  the encoders train on, and the one train/validation split);
- :mod:`.data`: offline sources, verified downloads and prepared data sets;
- :mod:`.steps` and :mod:`.pipeline`: one experiment end to end in a run directory
  (``lsalsa experiment run``);
- :mod:`.report`: figures, tables and documents drawn from stored results only
  (``lsalsa report``).

Importing it loads every module above (none imports matplotlib before it draws).
"""

from . import (
    analysis,
    checkpoint,
    code_sets,
    config,
    data,
    dictionaries,
    pipeline,
    progress,
    report,
    rundir,
    search,
    steps,
    training_data,
    training_run,
)

__all__ = ["analysis", "checkpoint", "code_sets", "config", "data", "dictionaries", "pipeline",
           "progress", "report", "rundir", "search", "steps", "training_data", "training_run"]

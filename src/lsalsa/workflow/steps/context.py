"""What every step of an experiment shares: the run directory, the config, the progress sink,
the device, and the data, codes and dictionaries loaded once per run."""

from __future__ import annotations

import numpy as np
import torch

from ...core._arrays import resolve_device
from ...core.problem import make_problem
from ..code_sets import load_codes
from ..config import ExperimentConfig
from ..data import load_prepared
from ..progress import Progress
from ..rundir import RunDir
from ..training_data import TrainingSplit, split_prepared

LOG_NAME = "lsalsa experiment"


class Run:
    """One experiment's run directory (:class:`RunDir`), its config (an
    :class:`~lsalsa.workflow.config.ExperimentConfig`), where its output goes, and shared
    loaders.

    ``progress`` draws bars (on a terminal); ``log`` takes one line of text (default: stderr,
    ``[lsalsa experiment] ...``)."""

    def __init__(self, run_dir, config: ExperimentConfig, *, data_dir=None,
                 progress: bool = True, log=None):
        self.config = config
        self.files = run_directory(run_dir, config)
        self.dir = self.files.path
        self.data_dir = data_dir
        self.sink = Progress(LOG_NAME, quiet=not progress)  # bars of the steps
        self.bars = self.sink.bars
        self.log = log or Progress(LOG_NAME).log
        self.device = _device(config.device)
        self._cache: dict = {}

    def open(self) -> Run:
        """Check or record the config (a directory of another one is refused), provenance
        and seed, and sweep the temporaries that killed runs left."""
        self.files.open()
        # Every folder a step writes into (the trainer and the search sweep their own too).
        nested = [p for top in ("models", "search") for p in (self.dir / top).glob("*")
                  if p.is_dir()]
        self.files.sweep("steps", "dictionaries", "eval", "figures", "tables", "models",
                         "search", *nested)
        return self

    # -- shared loaders ----------------------------------------------------------------------
    @property
    def dataset(self):
        """The prepared data set the data step recorded."""
        if "dataset" not in self._cache:
            path = self.files.read_marker("data")["path"]
            self._cache["dataset"] = load_prepared(self.dir / path)
        return self._cache["dataset"]

    @property
    def codeset(self):
        if "codes" not in self._cache:
            self._cache["codes"] = load_codes(self.dir / "codes")
        return self._cache["codes"]

    def split_arrays(self, split: str) -> dict:
        """Every array of a split, read into memory once."""
        key = f"split:{split}"
        if key not in self._cache:
            self._cache[key] = {k: np.array(v) for k, v in self.dataset.split(split).items()}
        return self._cache[key]

    def fit_val(self, objective: str = "codes") -> TrainingSplit:
        """The training and validation pairs (signals and optimal codes, or with
        ``objective="separation"`` the true components; float32, in memory):
        :func:`~lsalsa.workflow.training_data.split_prepared` with the search's
        ``val_fraction`` and ``max_train``."""
        key = f"fit_val:{objective}"
        if key not in self._cache:
            search = self.config.search
            self._cache[key] = split_prepared(
                self.dataset, self.codeset, val_fraction=search.val_fraction,
                max_train=search.max_train, seed=self.config.seed, dtype=np.float32,
                objective=objective)
        return self._cache[key]

    def blocks(self) -> list[np.ndarray]:
        """The dictionaries (float32), as the code set stores them."""
        return [np.asarray(d, dtype=np.float32) for d in self.codeset.dictionaries]

    def problem(self, alphas):
        """The MCA (or sparse coding) problem of the dictionaries at ``alphas``, on the device."""
        tensors = [torch.from_numpy(d).to(self.device) for d in self.blocks()]
        return make_problem(tensors, alphas)[0]


def run_directory(path, config: ExperimentConfig,
                  hint: str = "choose another `run_dir`") -> RunDir:
    """The run directory of an experiment: its config as JSON (``config.json``; where the file
    came from may change), seed and step markers."""
    return RunDir(path, config.to_dict(), seed=config.seed, model=ExperimentConfig, hint=hint)


def _device(wanted: str) -> torch.device:
    if wanted == "auto":
        wanted = "cuda" if torch.cuda.is_available() else "cpu"
    return resolve_device(wanted, "the config's device")

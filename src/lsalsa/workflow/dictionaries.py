"""Learned dictionaries on disk: resumable learning with checkpoints, and the stored result.

:func:`learn_with_checkpoints` runs :func:`lsalsa.core.dictionary.learn_dictionary` with a
progress bar and, given a folder, a checkpoint after every epoch. A checkpoint is the epoch's
arrays under new names (``dictionary_eNNNNN.npy``, ``power_eNNNNN.npy`` and, when the code
cache fits, ``codes_eNNNNN.npy``), then ``state.json`` (the run's config, the file names, the
epoch, step, history and whether it converged) pointing at them: a process killed at any moment
leaves the previous complete checkpoint readable. A folder that holds a checkpoint of the same
run is resumed from it, bit-identically; one of another run is refused.

The checkpoint keeps its config inside ``state.json`` rather than in a
:class:`lsalsa.workflow.rundir.RunDir`: the state and its config are one atomic write, and a
``RunDir`` would add ``config.json`` and ``provenance.json`` to the folder.

:func:`save_dictionary` writes the learned dictionary (.npy) with a JSON sidecar.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..checks import is_integer, is_number
from ..core._arrays import as_real
from ..core.dictionary import (
    DEFAULTS,
    DictionaryResult,
    DictionaryState,
    learn_dictionary,
    learning_config,
)
from ..errors import InputError
from ..io import load_npy, read_json_object, remove_stale_temporaries, save_npy, write_json
from ..version import provenance
from .progress import Progress, as_progress, follow
from .rundir import differing_keys

CHECKPOINT_STATE = "state.json"


def learn_with_checkpoints(signals, n_atoms: int | None = None,
                           alpha: float = DEFAULTS["alpha"], *, checkpoint_dir=None,
                           progress: bool | Progress = True, device=None,
                           **settings) -> DictionaryResult:
    """:func:`lsalsa.core.dictionary.learn_dictionary` with a bar on ``progress`` and, when
    ``checkpoint_dir`` is given, a checkpoint there after every epoch; a checkpoint of the same
    run already there is resumed from.

    ``settings`` are learn_dictionary's (epochs, batch_size, lr, lr_decay, tol, seed, init,
    n_iter_codes); every one is checked before the folder is touched.
    """
    config = learning_config(signals, n_atoms, alpha, **settings)
    state = None
    if checkpoint_dir is not None:
        remove_stale_temporaries(checkpoint_dir)  # what killed runs left behind
        state = _load_checkpoint(checkpoint_dir, config)
    with as_progress(progress).bar(None, "dictionary", "batch") as bar:
        def epoch_done(epoch_state: DictionaryState) -> None:
            bar.set_postfix(objective=f"{epoch_state.history[-1]:.5g}")
            if checkpoint_dir is not None:
                _save_checkpoint(checkpoint_dir, epoch_state, config)

        return learn_dictionary(signals, n_atoms, alpha, device=device, state=state,
                                on_epoch=epoch_done, callback=follow(bar), **settings)


def _save_checkpoint(directory, state: DictionaryState, config: dict) -> None:
    """Write the epoch's arrays under new names, then point ``state.json`` at them: a crash at
    any moment leaves the previous complete checkpoint readable."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tag = f"e{state.epoch:05d}"
    files = {"dictionary": f"dictionary_{tag}.npy", "power": f"power_{tag}.npy"}
    save_npy(directory / files["dictionary"], state.dictionary)
    save_npy(directory / files["power"], state.power)
    if state.codes is not None:
        files["codes"] = f"codes_{tag}.npy"
        save_npy(directory / files["codes"], state.codes)
    write_json(directory / CHECKPOINT_STATE, {
        "config": config, "files": files, "epoch": state.epoch, "step": state.step,
        "history": state.history, "converged": state.converged})
    for old in directory.glob("*_e*.npy"):
        if old.name not in files.values() and old.name.split("_e")[0] in files:
            old.unlink(missing_ok=True)


def _load_checkpoint(directory, config: dict) -> DictionaryState | None:
    """The state of a checkpoint of the same run, or None when the folder holds none.

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
    differs = differing_keys(saved, config, only=config)
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
    codes = None
    if "codes" in files:
        codes = _checkpoint_array(directory / files["codes"], (config["P"], n_atoms),
                                  np.float32)
    return DictionaryState(A, power, codes, state["epoch"], state["step"], state["history"],
                           state["converged"])


def _state_problems(state: dict, config: dict) -> list[str]:
    """What is wrong with the fields of a checkpoint's state (besides its config)."""
    problems = []
    epoch, step, history, files = (state.get(k) for k in ("epoch", "step", "history", "files"))
    if not is_integer(epoch, 1):
        problems.append(f"epoch must be an integer >= 1, got {epoch!r}")
        epoch = None
    if not isinstance(history, list) or not all(is_number(h) for h in history):
        problems.append("history must be a list of finite numbers")
    elif epoch is not None and len(history) != epoch:
        problems.append(f"history has {len(history)} entries at epoch {epoch}")
    # Every epoch takes the same number of steps: the lr schedule resumes from this count.
    steps = math.ceil(config["P"] / config["batch_size"])
    if epoch is not None and not (is_integer(step, 0) and step == epoch * steps):
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
    path = Path(path)
    sidecar = path.with_suffix(".json")
    save_npy(path, result.dictionary)
    write_json(sidecar, {"config": result.config, "history": result.history,
                         "epochs": result.epochs, "converged": result.converged,
                         "shape": list(result.dictionary.shape), **(extra or {}),
                         "provenance": provenance()})
    return sidecar

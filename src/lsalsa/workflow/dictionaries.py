"""Learned dictionaries on disk: resumable learning with checkpoints, and the stored result.

:func:`learn_with_checkpoints` runs :func:`lsalsa.core.dictionary.learn_dictionary` with a
progress bar and, given a folder, a checkpoint after every epoch: ``checkpoint.safetensors``, a
``dictionary`` checkpoint of :mod:`lsalsa.workflow.checkpoint` (one sealed file written
atomically) holding the dictionary, the Lipschitz tracker's vector and, when it fits, the code
cache, with the run's config, epoch, step, history and whether it converged. A folder that
holds a checkpoint of the same run is resumed from it, bit-identically; one of another run is
refused.

The checkpoint keeps its config inside the file rather than in a
:class:`lsalsa.workflow.rundir.RunDir`: the state and its config are one atomic write, and a
``RunDir`` would add ``config.json`` and ``provenance.json`` to the folder.

:func:`save_dictionary` writes the learned dictionary (.npy) with a JSON sidecar.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

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
from ..io import remove_stale_temporaries, save_npy, write_json
from ..version import provenance
from .checkpoint import read_checkpoint, write_checkpoint
from .progress import Progress, as_progress, follow
from .rundir import differing_keys

CHECKPOINT = "checkpoint.safetensors"


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
    """The epoch's checkpoint, one file replaced atomically: a crash at any moment leaves
    the previous complete checkpoint readable."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {"dictionary": state.dictionary, "power": state.power}
    if state.codes is not None:
        arrays["codes"] = state.codes
    write_checkpoint(directory / CHECKPOINT, "dictionary",
                     {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()},
                     {"config": config, "epoch": state.epoch, "step": state.step,
                      "history": state.history, "converged": state.converged})


def _load_checkpoint(directory, config: dict) -> DictionaryState | None:
    """The state of a checkpoint of the same run, or None when the folder holds none.

    The file is verified (its checksums) and its state checked as strictly as a training
    checkpoint's: a state this lsalsa would not have written is refused in one line, never
    resumed into a run that silently differs."""
    directory = Path(directory)
    file = directory / CHECKPOINT
    if not file.is_file():
        if (directory / "state.json").is_file():  # the format before sealed checkpoints
            raise InputError(f"{directory} holds a dictionary checkpoint of an older lsalsa "
                             "(state.json and .npy files); delete that folder to start afresh")
        return None
    tensors, state, _ = read_checkpoint(file, "dictionary")
    if not isinstance(state.get("config"), dict):
        raise InputError(f"checkpoint {file} is not a dictionary-learning state "
                         "(no config object)")
    differs = differing_keys(state["config"], config)
    if differs:
        raise InputError(f"checkpoint in {directory} belongs to another run (differs in "
                         f"{', '.join(differs)}); use another checkpoint folder")
    problems = _state_problems(state, config)
    shapes = {"dictionary": ((config["M"], config["n_atoms"]), np.float32),
              "power": ((config["n_atoms"],), np.float64),
              "codes": ((config["P"], config["n_atoms"]), np.float32)}
    if not {"dictionary", "power"} <= set(tensors) <= set(shapes):
        problems.append(f"it holds arrays {sorted(tensors)}, not the dictionary, power (and "
                        "codes)")
    if problems:
        raise InputError(f"checkpoint {file} is invalid ({'; '.join(problems)}); use another "
                         "checkpoint folder")
    arrays = {name: _checkpoint_array(file, name, tensors[name].numpy(), *shapes[name])
              for name in tensors}
    if not arrays["power"].any():  # the Lipschitz tracker would estimate L = 0: an infinite step
        raise InputError(f"checkpoint {file}: its power vector is all zeros")
    return DictionaryState(arrays["dictionary"], arrays["power"], arrays.get("codes"),
                           state["epoch"], state["step"], state["history"], state["converged"])


def _state_problems(state: dict, config: dict) -> list[str]:
    """What is wrong with the fields of a checkpoint's state (besides its config)."""
    problems = []
    epoch, step, history = (state.get(k) for k in ("epoch", "step", "history"))
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
    return problems


def _checkpoint_array(file: Path, name: str, array: np.ndarray, shape: tuple,
                      dtype) -> np.ndarray:
    if array.shape != shape:
        raise InputError(f"checkpoint {file}: its {name} has shape {array.shape}, expected "
                         f"{shape}")
    return as_real(array, dtype, f"checkpoint {file}: its {name}")


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

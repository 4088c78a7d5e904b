"""The options of dictionary learning (:func:`lsalsa.core.dictionary.learn_dictionary`),
declared once: :class:`DictionarySettings`, each field with its check, default and help, which
``lsalsa dictionary learn`` makes its flags from and the experiments' dictionary section
shares."""

from __future__ import annotations

from dataclasses import dataclass

from ..checks import (
    Settings,
    non_negative_int,
    non_negative_number,
    one_of,
    positive_int,
    positive_number,
    rule,
)

INITS = ("data", "random")
# The defaults, shared by learning_config and learn_dictionary's signature.
DEFAULTS = {"alpha": 0.1, "epochs": 10, "batch_size": 256, "lr": 1.0, "lr_decay": None,
            "tol": 1e-5, "seed": 0, "init": "data", "n_iter_codes": 50}


@dataclass(frozen=True)
class DictionarySettings(Settings):
    """Dictionary learning's options, checked when made (see
    :func:`lsalsa.core.dictionary.learn_dictionary` for what each does)."""

    n_atoms: int | None = rule(positive_int, None, none=True,
                               help="number of atoms ('none': M, one per pixel)")
    alpha: float = rule(positive_number, DEFAULTS["alpha"], help="the codes' l1 penalty")
    epochs: int = rule(positive_int, DEFAULTS["epochs"], help="most epochs")
    batch_size: int = rule(positive_int, DEFAULTS["batch_size"],
                           help="signals per SGD step (at most all of them)")
    lr: float = rule(positive_number, DEFAULTS["lr"],
                     help="initial step size lr0; step t uses lr0 / (1 + t / lr_decay)")
    lr_decay: float | None = rule(positive_number, DEFAULTS["lr_decay"], none=True,
                                  help="the step's decay, in steps ('none': 10 epochs' worth)")
    tol: float = rule(non_negative_number, DEFAULTS["tol"],
                      help="stop at this relative change of the epoch objective")
    seed: int = rule(non_negative_int, DEFAULTS["seed"],
                     help="seed of the starting dictionary and the shuffles")
    init: str = rule(one_of, DEFAULTS["init"], choices=INITS,
                     help="the starting atoms: random normalised signals (data) or Gaussian "
                          "columns (random)")
    n_iter_codes: int = rule(positive_int, DEFAULTS["n_iter_codes"],
                             help="FISTA iterations per batch, warm-started from the last "
                                  "codes of the same signals")


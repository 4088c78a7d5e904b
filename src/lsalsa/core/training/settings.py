"""What :func:`~lsalsa.core.training.trainer.train` takes, checked: its options
(:class:`TrainSettings`, with the :data:`DEFAULTS` shared with the command line and the
experiments) and its data (:func:`check_pair`: signals and their optimal codes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...checks import (
    Settings,
    check_fields,
    flag,
    integer,
    non_empty_list,
    non_negative_int,
    non_negative_number,
    number,
    one_of,
    positive_int,
    positive_number,
    rule,
)
from ...errors import InputError
from ..encoders import UnrolledEncoder
from ..mixtures import patch_side

OPTIMIZERS = ("adam", "sgd")
# What an encoder is trained to produce: the optimal codes (Eq. 15, the paper) or, for MCA, the
# true components of each mixture (the separation objective, docs/DESIGN.md section 3).
OBJECTIVES = ("codes", "separation")
SCHEDULES = ("cosine", "constant", "plateau")
# The plateau schedule halves the step after this many epochs in a row without a better
# validation RMSE; with the default patience (5) a run then ends after two halvings.
PLATEAU_WAIT = 2
LR_SCHEDULE = ("step t of n: lr * c(t / n) / (1 + lr_decay * epoch), c = (1 + cos(pi x)) / 2 "
               f"(cosine), 1 (constant) or 1/2 per {PLATEAU_WAIT} epochs in a row without a "
               "better validation RMSE (plateau); per tensor times s (Adam) or s^2 (SGD)")
# The defaults of train(), shared with the command line and the experiments.
DEFAULTS = {"optimizer": "adam", "lr": 0.1, "schedule": "cosine", "lr_decay": 0.0,
            "momentum": 0.0, "step_scaling": True, "threshold_lr": 1.0, "grad_clip": 1.0,
            "anchor_decay": 0.0,
            "reconstruction_weight": None, "objective": "codes", "component_weights": None,
            "augment_component": None, "augment_zoom": 1.0, "place_component": None,
            "batch_size": 64, "patience": 5, "rel_tol": 1e-6, "min_improvement": 0.0}

# With step scaling (the default) lr is each step's size relative to the tensor's own size, so
# lr = 1 can already move a tensor by its whole size in one step. 1e6 leaves room for vanilla
# SGD's absolute steps on small gradients (and for forcing a divergence in tests); far above
# it training can only diverge, and near float32's range (lr times a tensor's scale) the
# optimizer itself fails with a traceback.
MAX_LR = 1e6


def check_lr(value, name: str = "lr") -> float:
    """A learning rate in (0, MAX_LR], else an InputError naming ``name``."""
    return number(value, name, low=0, low_open=True, high=MAX_LR)


@dataclass(frozen=True)
class SplitSettings(Settings):
    """How the training data a command or an experiment reads is split, declared once: the
    validation pairs held out (when none are given) and the training pairs kept
    (:mod:`lsalsa.workflow.training_data`), checked when made."""

    val_fraction: float = rule(number, 0.1, low=0, high=1, low_open=True, high_open=True,
                               help="without validation pairs or a val split: hold out this "
                                    "last fraction of the training images")
    max_train: int | None = rule(positive_int, None, none=True,
                                 help="train on a seeded subset of this many training pairs "
                                      "('none': all)")


@dataclass(frozen=True)
class TrainSettings:
    """The training options of :func:`~lsalsa.core.training.trainer.train`, checked when made.

    Attributes
    ----------
    optimizer : "adam" (default) or "sgd" (vanilla SGD, the paper; ``momentum``
        optional).
    lr : the (relative, with ``step_scaling``) step size, in (0, ``MAX_LR`` = 1e6].
    schedule : "cosine" (decay to 0 over ``max_epochs``, per step), "constant", or "plateau":
        constant until ``PLATEAU_WAIT`` epochs in a row bring no better validation RMSE, then
        halved (and so on), so that training runs until validation stops improving
        (``patience``) rather than for a length fixed in advance; needs validation data.
    lr_decay : epoch e additionally divides the step by ``1 + lr_decay * e`` (the paper).
    step_scaling : optimise each tensor divided by its starting size
        (:func:`~lsalsa.core.training.schedule.step_scales`).
    threshold_lr : the learned thresholds' step, as a multiple of every other tensor's
        (1: the same relative step). Deep encoders can need a smaller one: each layer's
        thresholds move the codes of every layer after it, so one relative step moves a deep
        encoder's output further (the experiments choose it on validation,
        ``search.threshold_lrs``).
    grad_clip : clip the norm of the (scaled) gradient to this; None: no clipping.
    anchor_decay : per step, ``P -= lr_t * anchor_decay * (P - P_0)`` (0: off).
    reconstruction_weight : ``w`` in the loss ``1/2 ||e||^2 + w/2 sum_i ||A_i e_i||^2`` per
        sample (``e = f(y) - x*``, ``e_i`` its part on dictionary ``i``): ``w = 0`` is
        Eq. 15 exactly. None (default): 0 for one dictionary (SC, where codes are the
        product) and 1 for MCA, where the codes exist to rebuild each component, so each
        component's error in signal space counts too (atoms have unit norm: both terms
        have the same scale).
    objective : "codes" (default): ``references`` are the optimal codes (P, N) and the loss is
        the one above. "separation" (MCA only): ``references`` are the true components of each
        mixture side by side, (P, D * M), and the loss per sample is
        ``1/2 sum_i w_i ||A_i f_i(y) - y_i||^2``; validation then measures the components'
        RMSE against the true ones (:func:`~lsalsa.core.metrics.validation_rmse`).
    component_weights : the ``w_i`` of the separation loss, one per dictionary; None: all 1.
    augment_component : separation objective: draw fresh mixtures in every mini-batch, each
        sample's component ``i`` (its natural one) taken from a random training mixture,
        turned by one of the square's symmetries and given a random gamma and gain
        (:func:`~lsalsa.core.mixtures.augment_patches`); the signal is the sum of the
        components. None (default): the stored pairs as they are.
    augment_zoom : with ``augment_component``, the largest zoom of a random window of the
        natural component (:func:`~lsalsa.core.mixtures.zoom_patches`): its side is 1 / zoom
        to 1 of the patch's, at a random offset. 1 (default): the whole patch.
    place_component : separation objective: each sample's component ``i`` (its digit) placed
        as in a whole picture, at a random offset (partly outside the patch) or left out
        (:func:`~lsalsa.core.mixtures.place_patches`), and hidden where the mixture would
        exceed 1 (:func:`~lsalsa.core.mixtures.saturate`), so the mixtures look like the
        windows ``lsalsa separate`` cuts from a clipped image. None (default): as stored.
    batch_size : the GLOBAL mini-batch size (split across DDP processes under torchrun).
    max_epochs, patience, rel_tol : stop after ``max_epochs``, after ``patience`` epochs
        without a better validation RMSE (None: never), or when
        ``|L_e - L_{e-1}| / L_{e-1} < rel_tol`` for the epoch loss ``L``.
    min_improvement : for ``patience`` and the plateau schedule, an epoch betters validation
        only when its RMSE is below ``(1 - min_improvement)`` times the last such epoch's
        (0: any decrease); the kept weights are still those of the lowest validation RMSE.
        Without it, a plateau run whose step has been halved many times keeps finding
        decreases of a hundredth of a percent and runs to ``max_epochs``.
    seed : seeds the mini-batch shuffling (a private ``torch.Generator``).
    """

    optimizer: str = rule(one_of, DEFAULTS["optimizer"], choices=OPTIMIZERS,
                          help="adam, or sgd (the paper's)")
    schedule: str = rule(one_of, DEFAULTS["schedule"], choices=SCHEDULES,
                         help="the step over the epochs: cosine (to 0 at the last epoch), "
                              f"constant, or plateau (halved after {PLATEAU_WAIT} epochs "
                              "without a better validation RMSE; ends by patience)")
    batch_size: int = rule(positive_int, DEFAULTS["batch_size"],
                           help="the global mini-batch (split across torchrun's processes)")
    max_epochs: int = rule(positive_int, 100, help="most epochs")
    patience: int | None = rule(positive_int, DEFAULTS["patience"], none=True,
                                help="stop after this many epochs without a better validation "
                                     "RMSE ('none': never)")
    lr: float = rule(check_lr, DEFAULTS["lr"],
                     help=f"step size, relative to each tensor's size (at most {MAX_LR:g})")
    lr_decay: float = rule(non_negative_number, DEFAULTS["lr_decay"],
                           help="epoch e also divides the step by 1 + lr_decay * e")
    momentum: float = rule(non_negative_number, DEFAULTS["momentum"], help="SGD's momentum")
    threshold_lr: float = rule(positive_number, DEFAULTS["threshold_lr"],
                               help="the learned thresholds' step, a multiple of every other "
                                    "tensor's (deep encoders may need less)")
    rel_tol: float = rule(non_negative_number, DEFAULTS["rel_tol"],
                          help="stop when the epoch loss changes by less than this fraction")
    min_improvement: float = rule(number, DEFAULTS["min_improvement"], low=0, high=1,
                                  high_open=True,
                                  help="for patience and the plateau schedule, validation "
                                       "improves only by more than this fraction")
    anchor_decay: float = rule(non_negative_number, DEFAULTS["anchor_decay"],
                               help="pull the weights towards their start (0: off)")
    grad_clip: float | None = rule(positive_number, DEFAULTS["grad_clip"], none=True,
                                   help="clip the scaled gradient's norm to this ('none': off)")
    reconstruction_weight: float | None = rule(
        non_negative_number, DEFAULTS["reconstruction_weight"], none=True,
        help="weight of each component's reconstruction error in the codes objective's loss "
             "('none': 0 for one dictionary, 1 for MCA)")
    objective: str = rule(one_of, DEFAULTS["objective"], choices=OBJECTIVES,
                          help="codes: predict the optimal codes (Eq. 15, the paper); "
                               "separation (MCA): components A_i x_i close to the true ones")
    component_weights: tuple[float, ...] | None = rule(
        non_empty_list, DEFAULTS["component_weights"], none=True, each=non_negative_number,
        help="separation objective: the weight w_i of component i's error, once per "
             "dictionary (default: all 1)")
    augment_component: int | None = rule(
        non_negative_int, DEFAULTS["augment_component"], none=True,
        help="separation objective: fresh mixtures in every batch, this component (the "
             "natural one) drawn from a random training row, turned, flipped and given a "
             "random gamma and gain")
    augment_zoom: float = rule(number, DEFAULTS["augment_zoom"], low=1,
                               help="with augment_component: also crop that component to a "
                                    "random window, 1/zoom to 1 of the patch's side (1: the "
                                    "whole patch)")
    place_component: int | None = rule(
        non_negative_int, DEFAULTS["place_component"], none=True,
        help="separation objective: this component (the digit) placed as in a whole "
             "picture, at a random offset or left out, and hidden where the mixture passes 1")
    step_scaling: bool = rule(flag, DEFAULTS["step_scaling"],
                              help="steps relative to each tensor's size at the start")
    seed: int = rule(integer, 0, help="seed of the mini-batches' order and draws")

    def __post_init__(self):
        check_fields(self)
        if self.component_weights is not None:
            object.__setattr__(self, "component_weights", tuple(self.component_weights))

    def weights(self, encoder: UnrolledEncoder) -> list[float]:
        """The separation loss's ``w_i``, checked against the encoder's dictionaries."""
        D = len(encoder.block_sizes)
        if self.component_weights is None:
            return [1.0] * D
        if len(self.component_weights) != D:
            raise InputError(f"component_weights has {len(self.component_weights)} values "
                             f"but the encoder has {D} dictionaries")
        return [float(w) for w in self.component_weights]

    def reference_width(self, encoder: UnrolledEncoder) -> int:
        """Columns of ``references``: N codes, or the D components of M pixels side by side."""
        for name in ("augment_component", "place_component"):
            value = getattr(self, name)
            if value is not None and (self.objective != "separation"
                                      or value >= len(encoder.block_sizes)):
                raise InputError(f"{name} must name a component (0 to D - 1) of the "
                                 "separation objective's references")
        if self.place_component is not None and self.place_component == self.augment_component:
            raise InputError("place_component and augment_component must be different "
                             "components")
        if self.augment_zoom > 1 and self.augment_component is None:
            raise InputError("augment_zoom needs augment_component (the windows are taken "
                             "from the augmented component)")
        if (self.augment_component, self.place_component) != (None, None):
            patch_side(int(encoder.W.shape[1]), "augment_component and place_component")
        if self.objective == "codes":
            return int(encoder.W.shape[0])
        if len(encoder.block_sizes) < 2:
            raise InputError("the separation objective needs an MCA encoder (two or more "
                             "dictionaries)")
        return len(encoder.block_sizes) * int(encoder.W.shape[1])

    def config(self, encoder: UnrolledEncoder, validation: bool) -> dict:
        """The hyperparameters as recorded with a run (all but ``max_epochs``), with the
        defaults that depend on the encoder resolved and the loss and selection described."""
        if self.threshold_lr != DEFAULTS["threshold_lr"] and not encoder.learn_thresholds:
            raise InputError("threshold_lr is the step of learned thresholds; this encoder's "
                             "thresholds are fixed")
        weight = self.reconstruction_weight
        if weight is None:  # see train(): Eq. 15 for SC, each component's error too for MCA
            weight = 0.0 if len(encoder.block_sizes) == 1 else 1.0
        if self.objective == "separation":
            objective = {"objective": "separation", "component_weights": self.weights(encoder),
                         "loss": "mean over samples of 1/2 sum_i w_i ||A_i f_i(y) - y_i||^2 "
                                 "(y_i the true components)",
                         "selection": "best validation component RMSE, epoch 0 included"
                         if validation else "last epoch (no validation data)",
                         "augment_component": self.augment_component,
                         **({"augment_zoom": self.augment_zoom} if self.augment_zoom > 1
                            else {}),
                         "place_component": self.place_component}
        else:
            objective = {"objective": "codes",
                         "loss": "mean over samples of 1/2 ||e||^2 + w/2 sum_i ||A_i e_i||^2, "
                                 "e = f(y) - x* (w = reconstruction_weight; w = 0 is Eq. 15)",
                         "selection": "best validation RMSE, epoch 0 included" if validation
                         else "last epoch (no validation data)"}
        return {"optimizer": self.optimizer, "lr": self.lr, "schedule": self.schedule,
                "lr_decay": self.lr_decay, "lr_schedule": LR_SCHEDULE,
                "momentum": self.momentum, "step_scaling": self.step_scaling,
                # recorded only away from its default, so earlier runs' records still match
                **({"threshold_lr": self.threshold_lr}
                   if self.threshold_lr != DEFAULTS["threshold_lr"] else {}),
                "grad_clip": self.grad_clip, "anchor_decay": self.anchor_decay,
                "reconstruction_weight": float(weight), "batch_size": self.batch_size,
                "patience": self.patience, "rel_tol": self.rel_tol, "seed": self.seed,
                **({"min_improvement": self.min_improvement} if self.min_improvement else {}),
                **objective}


def check_pair(signals, references, M: int, N: int, s_name: str, r_name: str) -> int:
    """Check a pair of signals (P, M) and their codes (P, N): 2-D, non-empty, floating point,
    finite, with as many rows; returns P. NumPy (memory-mapped: read in chunks) or torch."""
    for name, array, width in ((s_name, signals, M), (r_name, references, N)):
        if not isinstance(array, np.ndarray | torch.Tensor):
            raise InputError(f"{name} must be a NumPy array or torch tensor, got "
                             f"{type(array).__name__}")
        if array.ndim != 2 or array.shape[0] == 0:
            raise InputError(f"{name} must be a non-empty 2-D array, got shape "
                             f"{tuple(array.shape)}")
        if array.shape[1] != width:
            raise InputError(f"{name} has {array.shape[1]} columns but the encoder expects "
                             f"{width}")
        kind = array.dtype.kind if isinstance(array, np.ndarray) else (
            "f" if array.is_floating_point() else "i")
        if kind != "f":
            raise InputError(f"{name} must hold floating-point values, got {array.dtype}")
        _check_finite(array, name)
    if signals.shape[0] != references.shape[0]:
        raise InputError(f"{s_name} has {signals.shape[0]} rows but {r_name} has "
                         f"{references.shape[0]}")
    return int(signals.shape[0])


def _check_finite(array, name: str, chunk: int = 65536) -> None:
    # In chunks, so a memory-mapped array is never read into memory at once.
    for start in range(0, array.shape[0], chunk):
        part = array[start:start + chunk]
        ok = bool(torch.isfinite(part).all()) if isinstance(part, torch.Tensor) else bool(
            np.isfinite(part).all())
        if not ok:
            raise InputError(f"{name} contains NaN or Inf")

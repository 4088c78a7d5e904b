"""What one training step reads and scores: this rank's rows of a mini-batch (the stored
pairs, or fresh mixtures drawn from them) and the loss per sample of the training objective
(:mod:`.settings` describes both).

The codes objective's loss is Eq. 15, ``1/(2P) sum_p ||x*_p - f_e(y_p)||^2`` (per mini-batch,
the mean over its samples of half the squared error summed over the N code entries), plus, for
MCA by default, each component's reconstruction error ``w/2 sum_i ||A_i (x*_p - f_e(y_p))_i||^2``:
separation is judged in signal space, where Eq. 15 alone lets the code errors fall on the atoms
that matter most (measured on held-out photographs: code RMSE 0.13 but natural PSNR 18.6 dB,
against 21.0 dB for SALSA; with ``w = 1`` code RMSE 0.148 and PSNR 21.7 dB).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ...errors import InputError
from .._arrays import as_batch
from ..mixtures import augment_draws, augment_patches, place_draws, place_in_mixtures
from ..problem import Problem


class Batches:
    """The mini-batches of a run: the stored rows of ``signals`` and ``references``, or, with
    ``augment`` or ``place`` (separation objective, ``references`` the components side by side),
    fresh mixtures made from them (which must be the sums of their components: checked
    here). Draws come from the run's ``generator`` (after its shuffling), made for the whole
    global batch so every DDP rank consumes it alike and a run resumes exactly."""

    def __init__(self, signals, references, *, M: int, augment: int | None, zoom: float,
                 place: int | None, generator: torch.Generator):
        if augment is not None or place is not None:
            _check_sums(signals, references, M)
        self.signals, self.references, self.M, self.P = signals, references, M, len(signals)
        self.augment, self.zoom, self.place = augment, zoom, place
        self.generator = generator

    def __call__(self, batch: torch.Tensor, like: torch.Tensor, dist):
        """This rank's (``dist.shard``) ``(signals, references)`` of the mini-batch ``batch``
        (row indices), as ``like``."""
        if self.augment is None and self.place is None:
            mine = dist.shard(batch)
            return _rows(self.signals, mine, like), _rows(self.references, mine, like)
        return self._fresh_mixtures(batch, like, dist)

    def _fresh_mixtures(self, batch: torch.Tensor, like: torch.Tensor, dist):
        """Each row's component ``augment`` replaced by an augmented one of a random training
        row, its component ``place`` placed as in a whole picture and hidden where the sum
        passes 1; the signal is the sum of the components."""
        n, M = len(batch), self.M
        mine = dist.shard(torch.arange(n))
        parts = list(_rows(self.references, batch[mine], like).split(M, dim=1))
        if self.augment is not None:
            partner = torch.randint(self.P, (n,), generator=self.generator)
            draws = augment_draws(n, self.generator, self.zoom)
            fresh = _rows(self.references, partner[mine], like)[:, self.augment * M:
                                                              (self.augment + 1) * M]
            parts[self.augment] = augment_patches(fresh, {k: v[mine] for k, v in draws.items()})
        if self.place is not None:
            draws = place_draws(n, math.isqrt(M), self.generator)
            parts = place_in_mixtures(parts, self.place, {k: v[mine] for k, v in draws.items()})
        return sum(parts), torch.cat(parts, dim=1)


def sample_loss(problem: Problem, estimate: torch.Tensor, reference: torch.Tensor, *,
                objective: str, weights: list[float],
                reconstruction_weight: float) -> torch.Tensor:
    """Per sample: ``1/2 ||e||^2 + w/2 sum_i ||A_i e_i||^2`` with ``e = f(y) - x*`` (codes, ``w``
    the ``reconstruction_weight``), or ``1/2 sum_i w_i ||A_i f_i(y) - y_i||^2`` (separation,
    ``reference`` the components, ``w_i`` the ``weights``)."""
    if objective == "separation":
        truth = reference.split(problem.A.shape[0], dim=1)
        loss = 0.0
        for x_i, A_i, y_i, w_i in zip(problem.split(estimate), problem.blocks, truth, weights,
                                      strict=True):
            if w_i:
                loss = loss + (0.5 * w_i) * (x_i @ A_i.T - y_i).pow(2).sum(dim=1)
        return loss if torch.is_tensor(loss) else estimate.new_zeros(estimate.shape[0])
    err = estimate - reference
    loss = 0.5 * err.pow(2).sum(dim=1)
    if reconstruction_weight:
        for e_i, A_i in zip(problem.split(err), problem.blocks, strict=True):
            loss = loss + (0.5 * reconstruction_weight) * (e_i @ A_i.T).pow(2).sum(dim=1)
    return loss


def placed_validation(references, index: int, M: int, seed: int, like: torch.Tensor):
    """Validation mixtures made as the training ones are (component ``index`` placed as in
    a whole picture), drawn once from ``seed``, so every epoch is scored on the same set:
    (signals, components) as ``like``."""
    parts = list(as_batch(np.asarray(references), like).split(M, dim=1))
    draws = place_draws(len(parts[0]), math.isqrt(M),
                        torch.Generator().manual_seed(int(seed) + 1))
    parts = place_in_mixtures(parts, index, draws)
    return sum(parts), torch.cat(parts, dim=1)


def _check_sums(signals, references, M: int, chunk: int = 4096) -> None:
    """Fresh mixtures are sums of components, so the stored ones must be too: every row,
    ``chunk`` at a time (memory-mapped arrays stay on disk), to the rounding of a float32
    sum."""
    for start in range(0, len(signals), chunk):
        Y = np.asarray(signals[start:start + chunk], dtype=np.float64)
        parts = np.asarray(references[start:start + chunk], dtype=np.float64)
        total = parts.reshape(len(parts), -1, M).sum(axis=1)
        scale = np.abs(parts).reshape(len(parts), -1, M).sum(axis=1)
        if not np.all(np.abs(Y - total) <= 4 * np.finfo(np.float32).eps * scale + 1e-30):
            raise InputError("fresh mixtures (augment_component, place_component) need "
                             "mixtures that are the sum of their components (the references); "
                             f"these signals are not (rows {start} to {start + len(Y) - 1})")


def _rows(array, index: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Rows ``index`` of a NumPy (possibly memory-mapped) array or tensor, as ``like``."""
    if isinstance(array, torch.Tensor):
        return array[index.to(array.device)].to(dtype=like.dtype, device=like.device)
    return as_batch(array[index.numpy()], like)

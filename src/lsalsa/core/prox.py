"""Proximal operators: the l1 prox (soft thresholding) with one threshold per coordinate."""

from __future__ import annotations

import torch


def soft_threshold(z: torch.Tensor, tau: torch.Tensor | float) -> torch.Tensor:
    """``sign(z) * max(|z| - tau, 0)``; ``tau`` is a scalar or broadcasts over the last axis.

    Written as ``z - clamp(z, -tau, tau)`` so it is one fused-friendly expression with a
    subgradient of 0 inside the dead zone (what autograd needs for training).
    """
    if isinstance(tau, torch.Tensor):
        return z - torch.minimum(torch.maximum(z, -tau), tau)
    return z - z.clamp(-tau, tau)

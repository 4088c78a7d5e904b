"""Shared fixtures: small random problems, and a device list that includes CUDA when present."""

from __future__ import annotations

import numpy as np
import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


def random_dictionary(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
    A = rng.standard_normal((m, n))
    return A / np.linalg.norm(A, axis=0)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)

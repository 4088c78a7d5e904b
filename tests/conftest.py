"""Shared fixtures: small random problems, and a device list that includes CUDA when present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(autouse=True)
def one_thread():
    """The suite runs thousands of tiny products: with several threads on small shared
    machines, OpenMP hand-offs dominate (measured 4-10x slower), so tests use one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


def random_dictionary(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
    A = rng.standard_normal((m, n))
    return A / np.linalg.norm(A, axis=0)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def alias_of(target: Path, alias: str, name: Path) -> Path:
    """``target`` itself ("same name"), or ``name`` made a "symlink" or "hard link" to it: the
    ways an output path can be an input under another name."""
    if alias == "same name":
        return target
    if alias == "symlink":
        name.symlink_to(target)
    elif alias == "hard link":
        os.link(target, name)
    else:
        raise ValueError(alias)
    return name


def low_precisions(device: torch.device) -> list[torch.dtype]:
    """The low precisions of the inference path (``dtype=``) that ``device`` runs: bfloat16
    on CPU; float16, and bfloat16 where supported, on CUDA."""
    if device.type != "cuda":
        return [torch.bfloat16]
    return [torch.float16] + ([torch.bfloat16] if torch.cuda.is_bf16_supported() else [])

"""Conversion between NumPy arrays and torch tensors, and the checks every entry point shares."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError

ArrayLike = np.ndarray | torch.Tensor


def sorted_subset(n: int, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    """Row indices: all of ``range(n)``, or ``limit`` of them drawn by ``rng`` without
    replacement, in increasing order (so memory-mapped rows are read front to back)."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(rng.choice(n, size=limit, replace=False))


def resolve_device(name: str, what: str = "`device`") -> torch.device:
    """A torch device from a name: ``cpu`` or ``cuda[:N]``, refusing a CUDA device that is not
    here. torch also names devices (meta, mps, xla, ...) whose tensors fail later with a
    traceback, or hold no values at all (meta). ``what`` names the setting in errors."""
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise InputError(f"unknown device {name!r}") from exc
    if device.type not in ("cpu", "cuda"):
        raise InputError(f"{what} must be cpu, cuda or cuda:N, got {name!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"{what} {name} asked for, but no CUDA device is available")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise InputError(f"{what} {name}: there is no such CUDA device "
                             f"({count} available, cuda:0 to cuda:{count - 1})")
    return device


def as_tensor(value, name: str) -> tuple[torch.Tensor, bool]:
    """Return ``(tensor, came_from_numpy)``; integer or boolean NumPy input becomes float64."""
    if isinstance(value, torch.Tensor):
        tensor, from_numpy = value, False
    elif isinstance(value, np.ndarray | list | tuple | float | int):
        array = np.asarray(value)
        if array.dtype.kind in "biu":
            array = array.astype(np.float64)
        if array.dtype.kind != "f":
            raise InputError(f"{name} must be a numeric array, got dtype {array.dtype}")
        if not array.dtype.isnative:  # big-endian files: torch takes native byte order only
            array = array.astype(array.dtype.newbyteorder("="))
        array = np.asarray(array, order="C")  # not ascontiguousarray: it makes 0-D into 1-D
        if not array.flags.writeable:  # memmaps, views: torch wants memory it may write
            array = array.copy()
        tensor, from_numpy = torch.from_numpy(array), True
    else:
        kind = type(value).__name__
        raise InputError(f"{name} must be a NumPy array or a torch tensor, got {kind}")
    if not tensor.is_floating_point():
        raise InputError(f"{name} must hold floating-point values, got {tensor.dtype}")
    if tensor.dtype not in (torch.float32, torch.float64):
        raise InputError(f"{name} must be float32 or float64, got {tensor.dtype}")
    return tensor, from_numpy


def numpy_dtype(dtype: torch.dtype) -> np.dtype:
    """The NumPy dtype of a torch dtype (float32 -> float32, ...)."""
    return torch.empty(0, dtype=dtype).numpy().dtype


def check_finite(tensor: torch.Tensor, name: str) -> None:
    # A finite sum means every entry is finite (NaN and Inf propagate), and one reduction is
    # ~40x cheaper than isfinite(); only when the sum is not finite (or merely overflows)
    # is every entry examined.
    if not bool(torch.isfinite(tensor.sum())) and not bool(torch.isfinite(tensor).all()):
        raise InputError(f"{name} contains NaN or Inf")


def cast_array(array: np.ndarray, dtype, name: str) -> np.ndarray:
    """``array`` as ``dtype``, refusing NaN or Inf, and values the cast would make infinite."""
    array = np.asarray(array)
    with np.errstate(over="ignore"):  # the overflow is reported below, in one line
        out = array.astype(dtype, copy=False)
    if not np.isfinite(out).all():
        if np.isfinite(array).all():
            limit = np.finfo(dtype).max
            raise InputError(f"{name} has values beyond the {np.dtype(dtype).name} range "
                             f"(|x| > {limit:.4g}); rescale them")
        raise InputError(f"{name} has NaN or Inf values")
    return out


def as_real(array, dtype, name: str) -> np.ndarray:
    """``array`` as the real ``dtype``, refusing complex, text and object arrays (astype would
    drop an imaginary part with only a warning, or fail on text with a traceback) and what
    :func:`cast_array` refuses."""
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise InputError(f"{name} must hold real numbers, got dtype {array.dtype}")
    return cast_array(array, dtype, name)


def check_same_kind(tensors: dict[str, torch.Tensor]) -> None:
    """All tensors must live on one device with one dtype: we never convert silently."""
    items = list(tensors.items())
    first_name, first = items[0]
    for name, tensor in items[1:]:
        if tensor.device != first.device:
            raise InputError(
                f"{name} is on {tensor.device} but {first_name} is on {first.device}; "
                "move them to one device"
            )
        if tensor.dtype != first.dtype:
            raise InputError(
                f"{name} has dtype {tensor.dtype} but {first_name} has {first.dtype}; "
                "give every array the same dtype"
            )


def as_signals(Y, name: str = "Y") -> tuple[torch.Tensor, bool]:
    """A batch of signals or codes: 2-D, non-empty, finite."""
    tensor, from_numpy = as_tensor(Y, name)
    if tensor.ndim != 2:
        raise InputError(f"{name} must be 2-D (batch, features), got shape {tuple(tensor.shape)}")
    if tensor.shape[0] == 0:
        raise InputError(f"{name} is an empty batch")
    check_finite(tensor, name)
    return tensor, from_numpy


def to_output(tensor: torch.Tensor, as_numpy: bool):
    """Give results back in the kind the caller passed in."""
    if as_numpy:
        return tensor.detach().cpu().numpy()
    return tensor


def check_signal_array(signals, name: str = "signals") -> tuple[int, int]:
    """Shape ``(P, M)`` of a NumPy array or memmap of signals, checked without reading it."""
    if not hasattr(signals, "shape") or not hasattr(signals, "dtype"):
        raise InputError(f"{name} must be a NumPy array or memmap of shape (P, M)")
    if len(signals.shape) != 2:
        raise InputError(f"{name} must be 2-D (P, M), got shape {tuple(signals.shape)}")
    P, M = (int(s) for s in signals.shape)
    if P == 0 or M == 0:
        raise InputError(f"{name} is empty (shape {(P, M)})")
    if np.dtype(signals.dtype).kind not in "fiu":
        raise InputError(f"{name} must be numeric, got dtype {signals.dtype}")
    return P, M


def as_batch(rows, like: torch.Tensor) -> torch.Tensor:
    """Rows of a NumPy array (memory-mapped is fine) or tensor, as ``like``'s dtype and device.

    NumPy rows are always copied into torch's own (aligned) memory: MKL's products may round
    differently for buffers of another alignment, which would break bit-exact resume and make
    NumPy and torch inputs train differently. A batch is small.
    """
    if not isinstance(rows, torch.Tensor):
        rows = torch.tensor(np.asarray(rows))
    return rows.to(dtype=like.dtype, device=like.device)

"""Learned encoders: LISTA and LSALSA unroll T iterations of ISTA and SALSA into a network.

Both reuse the iteration steps of :mod:`lsalsa.core.operators` and start from the classic
operators, so at initialisation ``LISTA(T)`` returns exactly ISTA(T) and ``LSALSA(T)`` exactly
SALSA(T). Every layer computes ``b = W y`` once and then one product with ``S``:

- LISTA: ``z = soft(W y + S z; theta)``, ``W = A^T / L``, ``S = I - A^T A / L`` at the start;
- LSALSA: ``x = W y + S (u - d)``, ``u = soft(x + d; theta)``, ``d = d + x - u``, with
  ``W = (mu I + A^T A)^{-1} A^T`` and ``S = mu (mu I + A^T A)^{-1}`` at the start.

LSALSA's pair is the paper's ``(W_e, S)`` of Eq. 14 in scaled form (``W = S_p W_e``,
``S = mu S_p``; :meth:`UnrolledEncoder.paper_operators` converts back). It is the same network,
but the paper's form multiplies the two learned tensors (``S_p W_e y``) and scales ``S_p`` by
``mu``: its entries are O(1/mu) and its gradients O(mu), so a step size that suits ``W_e``
wrecks ``S_p``. In the scaled form each learned tensor enters linearly and is O(1).

Weights are tied across layers as in the paper (Eq. 14); untied per-layer ``S`` is an option.
Per-coordinate thresholds ``theta`` (start ``alpha / L`` and ``alpha / mu``) are learned by
default for both encoders; ``learn_thresholds=False`` keeps the paper's fixed ``alpha / mu``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ...checks import one_of
from ...errors import InputError
from ...version import __version__
from .._arrays import as_signals, check_finite, to_output
from ..operators import (
    LowPrecisionAffine,
    affine,
    encode_input,
    inference_dtype,
    ista_operators,
    low_precision_input,
    salsa_operators,
)
from ..problem import DEFAULT_MU, Problem, check_mu, make_problem
from .layers import FUSED_GRAPHS, compiled_unroll, unroll
from .model_file import FORMAT, FORMAT_VERSION, read_model, write_model
from .settings import KINDS, EncoderSettings, EncodeSettings


class UnrolledEncoder(torch.nn.Module):
    """An unrolled, trainable sparse encoder; use :class:`LISTA` or :class:`LSALSA`.

    Parameters
    ----------
    dictionaries : array (M, N) or list of arrays (M, N_i)
    alphas : float or one per dictionary
    depth : number of unrolled iterations T (>= 1)
    mu : ADMM penalty (LSALSA only)
    untied : learn one ``S`` per layer instead of one shared ``S``
    learn_thresholds : make the per-coordinate thresholds trainable (default)

    Calling the encoder on a tensor ``Y`` (B, M) returns codes (B, N); :meth:`encode` also
    takes NumPy arrays, validates them and works in batches without building a graph.
    """

    kind: str = ""

    def __init__(self, dictionaries, alphas, depth: int, *, mu: float | None = None,
                 untied: bool = EncoderSettings.untied,
                 learn_thresholds: bool = EncoderSettings.learn_thresholds, operators=None):
        super().__init__()
        settings = EncoderSettings(depth=depth, kind=self.kind, untied=untied,
                                   learn_thresholds=learn_thresholds)
        problem = dictionaries if isinstance(dictionaries, Problem) else make_problem(
            dictionaries, alphas)[0]
        self.depth = settings.depth
        self.block_sizes = problem.block_sizes
        self.alphas = problem.alphas
        self.untied = settings.untied
        self.learn_thresholds = settings.learn_thresholds
        if self.kind == "lsalsa":
            self.mu = check_mu(DEFAULT_MU if mu is None else mu)
        elif mu is not None:
            raise InputError("LISTA has no mu")
        else:
            self.mu = None
        if operators is None:  # given only by load_encoder, which overwrites them anyway
            operators = (salsa_operators(problem, self.mu) if self.kind == "lsalsa"
                         else ista_operators(problem))
        W, S, tau = operators
        self.register_buffer("dictionary", problem.A.detach().clone())
        self.W = torch.nn.Parameter(W.detach().clone())
        S = S.detach().clone()
        # From the zero state the first layer is soft(W y): with one layer S is never used,
        # so it is not trained (and DDP would wait for its gradient forever).
        self.S = torch.nn.Parameter(S.expand(depth, -1, -1).clone() if untied else S,
                                    requires_grad=depth > 1)
        if self.learn_thresholds:
            self.thresholds = torch.nn.Parameter(tau.detach().clone())
        else:
            self.register_buffer("thresholds", tau.detach().clone())
        self._low_weights_cache: dict = {}  # dtype -> (weights' identity, W^T, [S^T])

    # -- the network -------------------------------------------------------------------
    @property
    def problem(self) -> Problem:
        return Problem(self.dictionary, self.block_sizes, self.alphas)

    def _layer_S(self, t: int) -> torch.Tensor:
        return self.S[t] if self.untied else self.S

    def _tau(self) -> torch.Tensor:
        # Learned thresholds may drift below zero, where soft thresholding is meaningless.
        return self.thresholds.clamp_min(0) if self.learn_thresholds else self.thresholds

    def _low_weights(self, dtype: torch.dtype) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``W^T`` and every layer's ``S^T`` cast to ``dtype`` once, and again only when the
        weights change (training steps and ``load_state_dict`` bump their versions)."""
        identity = tuple((p.device, p.data_ptr(), p._version) for p in (self.W, self.S))
        cached = self._low_weights_cache.get(dtype)
        if cached is None or cached[0] != identity:
            S_low = self.S.detach().transpose(-1, -2).to(dtype).contiguous()
            layers = [S_low[t] if self.untied else S_low for t in range(self.depth)]
            cached = (identity, self.W.detach().T.to(dtype).contiguous(), layers)
            self._low_weights_cache[dtype] = cached
        return cached[1], cached[2]

    def forward(self, Y: torch.Tensor, out: torch.Tensor | None = None,
                dtype=None) -> torch.Tensor:
        """Codes of the batch ``Y`` (B, M); in inference mode they are written into ``out``
        (B, N) when given, which is then returned.

        ``dtype`` ("bfloat16", "float16" on CUDA; None: the model's own) runs the products in
        that precision, without autograd; thresholds, iterates and codes stay in the model's
        dtype (see :class:`lsalsa.core.operators.LowPrecisionAffine`).
        """
        self._check_signals(Y)
        low = inference_dtype(dtype, self.W.device, self.W.dtype)
        if low is None:
            return unroll(self.kind, encode_input(Y, self.W), self._layers(), self._tau(),
                          affine, out)
        if torch.is_grad_enabled():
            raise InputError("low-precision codes are for inference: call encode() or run "
                             "under torch.inference_mode()")
        with torch.inference_mode():
            W_low, S_low = self._low_weights(low)
            b = low_precision_input(Y, W_low)
            return unroll(self.kind, b, S_low, self._tau(), LowPrecisionAffine(low), out)

    def _check_signals(self, Y: torch.Tensor) -> None:
        if Y.ndim != 2 or Y.shape[1] != self.W.shape[1]:
            raise InputError(f"expected signals of shape (B, {self.W.shape[1]}), got "
                             f"{tuple(Y.shape)}")

    def _layers(self) -> list[torch.Tensor]:
        """Every layer's ``S``, in order (tied: the same tensor T times)."""
        return [self._layer_S(t) for t in range(self.depth)]

    def _fused(self, Y: torch.Tensor, low: torch.dtype | None) -> torch.Tensor:
        """:func:`fused_unroll`, compiled (once per process and configuration; the batch size
        is dynamic), on this encoder's current weights."""
        if low is None:
            W_t = self.W.detach().T
            layers = tuple(S.detach() for S in self._layers())
        else:
            W_t, S_low = self._low_weights(low)
            layers = tuple(S_low)
        # One compiled function serves every encoder, but each depth, kind, precision, dtype
        # and tying is a graph of its own (a guard on the arguments): the default limit of 8
        # graphs per function would make later configurations run uncompiled.
        try:
            with torch._dynamo.config.patch(recompile_limit=FUSED_GRAPHS):
                return compiled_unroll()(Y, W_t, layers, self._tau().detach(), self.kind,
                                          low is not None)
        except torch._dynamo.exc.BackendCompilerFailed as exc:  # e.g. no C++ compiler
            raise InputError(f"fused layers need a working torch.compile (a C++ compiler on "
                             f"CPU, Triton on CUDA): {str(exc).splitlines()[0]}") from exc

    @torch.inference_mode()
    def encode(self, Y, batch_size: int = EncodeSettings.batch_size, dtype=None,
               fused: bool = EncodeSettings.fused):
        """Codes of ``Y`` (B, M), NumPy or torch, in batches; the same kind comes back.

        ``dtype``: "bfloat16" (or ``torch.bfloat16``; "float16" on CUDA) runs the products in
        that precision; the codes still come back in the model's dtype. None: the model's own.
        ``fused``: run the layers through ``torch.compile`` (:func:`fused_unroll`), which fuses
        each layer's elementwise work into a few passes; the first call of a configuration
        (depth, kind, precision) compiles, seconds to a minute, and later calls reuse it
        whatever their batch size (but 1). Same operations, so the same codes up to rounding
        (the compiler may contract a multiply and an add).
        """
        EncodeSettings(batch_size=batch_size, fused=fused)
        low = inference_dtype(dtype, self.W.device, self.W.dtype)
        Y_t, as_numpy = as_signals(Y, "Y")
        if fused:  # the compiled path skips forward(), which checks them
            self._check_signals(Y_t)
        Y_t = Y_t.to(device=self.W.device, dtype=self.W.dtype)
        # Each batch's codes are written straight into the result: no concatenation, and
        # peak memory is the result plus one batch.
        codes = torch.empty((Y_t.shape[0], self.W.shape[0]), dtype=self.W.dtype,
                            device=self.W.device)
        for i in range(0, Y_t.shape[0], batch_size):
            if fused:
                codes[i:i + batch_size] = self._fused(Y_t[i:i + batch_size], low)
            else:
                self(Y_t[i:i + batch_size], out=codes[i:i + batch_size], dtype=low)
        if low is not None:  # a float16 product can overflow (beyond 65504)
            check_finite(codes, f"the codes computed in {str(low).removeprefix('torch.')} "
                                "(an overflow: rescale the signals or use bfloat16)")
        return to_output(codes, as_numpy)

    def paper_operators(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The learned ``(W_e, S)`` as the paper writes them (Eq. 14), in float64.

        LISTA: ``(W, S)`` as they are. LSALSA: ``S_p = S / mu`` and ``W_e = S_p^{-1} W``
        (``S`` of every layer for an untied model: shape (T, N, N)).
        """
        W = self.W.detach().to(torch.float64)
        S = self.S.detach().to(torch.float64)
        if self.kind != "lsalsa":
            return W, S
        # One (N, N) solve per layer: a batched solve on the CPU can hang in MKL with more
        # than one thread (pytorch/pytorch#141358, #142815), as it did here after training.
        layers = list(S) if self.untied else [S]
        W_e = [self.mu * torch.linalg.solve(S_t, W) for S_t in layers]
        return (torch.stack(W_e) if self.untied else W_e[0]), S / self.mu

    # -- files ---------------------------------------------------------------------------
    def config(self) -> dict:
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION, "kind": self.kind,
            "depth": self.depth, "mu": self.mu, "alphas": list(self.alphas),
            "block_sizes": list(self.block_sizes), "M": int(self.dictionary.shape[0]),
            "N": int(self.dictionary.shape[1]), "untied": self.untied,
            "learn_thresholds": self.learn_thresholds,
            "dtype": str(self.W.dtype).removeprefix("torch."),
            "dictionary_hash": self.problem.fingerprint(), "lsalsa_version": __version__,
        }

    def save(self, path: str | os.PathLike, extra: dict | None = None) -> Path:
        """Write weights, dictionary and config (and ``extra``, a JSON object) to one
        safetensors file, atomically, with a sha256 of every tensor and of the header."""
        state = self.state_dict()
        for name, tensor in state.items():  # every output is checked before it is written
            if not bool(torch.isfinite(tensor).all()):
                raise InputError(f"the model's {name} holds NaN or Inf; nothing was written "
                                 f"to {path}")
        return write_model(path, state, self.config(), extra)


class LISTA(UnrolledEncoder):
    """Learned ISTA (Gregor & LeCun 2010): ``z^t = soft(W y + S z^{t-1}; theta)``.

    Init ``W = A^T / L``, ``S = I - A^T A / L``, ``theta = alpha / L``: equals ISTA(T).
    Thresholds are learned unless ``learn_thresholds=False``.
    """

    kind = "lista"

    def __init__(self, dictionaries, alphas, depth: int, *, untied: bool = False,
                 learn_thresholds: bool = True, operators=None):
        super().__init__(dictionaries, alphas, depth, untied=untied,
                         learn_thresholds=learn_thresholds, operators=operators)


class LSALSA(UnrolledEncoder):
    """Learned SALSA (the paper, Eq. 14) in scaled form: learned ``W`` (init
    ``(mu I + A^T A)^{-1} A^T``) and splitting operator ``S`` (init ``mu (mu I + A^T A)^{-1}``),
    shared by all T layers, and per-coordinate thresholds (init ``alpha / mu``; learned unless
    ``learn_thresholds=False``, the paper's exact model).

    Layer t: ``x = W y + S (u - d)``, ``u = soft(x + d; theta)``, ``d = d + x - u``; the output
    is ``u^T``. At initialisation it equals SALSA(T).
    """

    kind = "lsalsa"

    def __init__(self, dictionaries, alphas, depth: int, mu: float = DEFAULT_MU, *,
                 untied: bool = False, learn_thresholds: bool = True, operators=None):
        super().__init__(dictionaries, alphas, depth, mu=mu, untied=untied,
                         learn_thresholds=learn_thresholds, operators=operators)


def build_encoder(kind: str, dictionaries, alphas, depth: int, mu: float | None = None,
                  **options) -> UnrolledEncoder:
    """Build an encoder by name: ``"lista"`` or ``"lsalsa"``."""
    one_of(kind, "kind", choices=KINDS)
    if kind == "lsalsa":
        return LSALSA(dictionaries, alphas, depth, DEFAULT_MU if mu is None else mu,
                      **options)
    return LISTA(dictionaries, alphas, depth, **options)


def load_encoder(path: str | os.PathLike, device=None) -> UnrolledEncoder:
    """Load a model written by :meth:`UnrolledEncoder.save`, checking it thoroughly: the
    checksums of its header and of every tensor, the config's types and ranges, the shapes,
    finite weights and the dictionary's fingerprint."""
    config, _, tensors = read_model(path, tensors=True)
    kind, depth, M, N = config["kind"], config["depth"], config["M"], config["N"]
    options = {"untied": config["untied"], "learn_thresholds": config["learn_thresholds"]}
    S_shape = (depth, N, N) if options["untied"] else (N, N)
    expected = {"dictionary": (M, N), "W": (N, M), "S": S_shape, "thresholds": (N,)}
    if set(tensors) != set(expected):
        raise InputError(f"{path}: weights {sorted(tensors)} do not match the config "
                         f"(expected {sorted(expected)})")
    for name, shape in expected.items():
        if tuple(tensors[name].shape) != shape:
            raise InputError(f"{path}: weight {name} has shape {tuple(tensors[name].shape)}, "
                             f"the config says {shape}")
        if str(tensors[name].dtype).removeprefix("torch.") != config["dtype"]:
            raise InputError(f"{path}: weight {name} is {tensors[name].dtype}, the config says "
                             f"{config['dtype']}")
        if not bool(torch.isfinite(tensors[name]).all()):
            raise InputError(f"{path}: weight {name} contains NaN or Inf")
    alphas = tuple(float(a) for a in config["alphas"])  # checked with the header (check_config)
    problem = Problem(tensors["dictionary"], tuple(config["block_sizes"]), alphas)
    if problem.fingerprint() != config["dictionary_hash"]:
        raise InputError(f"{path}: the stored dictionary does not match its hash in the config")
    # The stored weights stand in for the initial operators: no SVD or inverse at load time.
    S = tensors["S"][0] if options["untied"] else tensors["S"]
    encoder = build_encoder(kind, problem, problem.alphas, depth, config["mu"], **options,
                            operators=(tensors["W"], S, tensors["thresholds"]))
    encoder.load_state_dict(tensors)
    return encoder.to(device) if device is not None else encoder


def components(model: UnrolledEncoder | Problem, codes: torch.Tensor | np.ndarray,
               dtype=None) -> list:
    """The reconstructed components ``A_i x_i`` (each (B, M)) of codes (B, N), for an encoder's
    dictionaries or a :class:`~lsalsa.core.problem.Problem`'s; NumPy codes give NumPy arrays.
    ``dtype`` ("bfloat16", "float16" on CUDA) runs the products in that precision; the
    components come back in the dictionaries' dtype."""
    problem = model.problem if isinstance(model, UnrolledEncoder) else model
    low = inference_dtype(dtype, problem.device, problem.dtype)
    tensor = torch.as_tensor(codes, dtype=problem.dtype, device=problem.device)
    if low is None:
        result = [p @ a.T for p, a in zip(problem.split(tensor), problem.blocks, strict=True)]
    else:
        result = [low_precision_input(p, a.T.to(low))
                  for p, a in zip(problem.split(tensor), problem.blocks, strict=True)]
    return [r.cpu().numpy() for r in result] if isinstance(codes, np.ndarray) else result


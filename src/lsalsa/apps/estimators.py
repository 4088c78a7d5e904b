"""A scikit-learn transformer around the learned encoders, so they drop into a Pipeline.

``fit(X, codes=...)`` trains LISTA or LSALSA to map signals to their optimal codes; without
``codes`` it computes exact ones for the given dictionaries, and without dictionaries it
first learns one from ``X``. With ``objective="separation"`` (MCA) ``fit(X,
components=...)`` trains LSALSA so that each component ``A_i x_i`` of the codes matches the
true one. ``transform(X)`` returns the codes.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ..core.codes import compute_codes
from ..core.dictionary import learn_dictionary
from ..core.encoders import build_encoder
from ..core.operators import inference_dtype
from ..core.problem import DEFAULT_MU
from ..core.training import DEFAULTS, train
from ..errors import InputError


class LearnedSparseCoder(TransformerMixin, BaseEstimator):
    """Sparse codes from a trained LISTA or LSALSA encoder, scikit-learn style.

    Parameters
    ----------
    kind : "lsalsa" or "lista"
    dictionaries : array (M, N), list of arrays (M, N_i), or None to learn one from ``X``
    alphas : float or one per dictionary (> 0)
    depth : unrolled iterations T
    mu : ADMM penalty (LSALSA)
    n_atoms : atoms of a dictionary learned in ``fit`` (default: ``n_features``)
    dict_epochs : epochs of dictionary learning when ``dictionaries`` is None
    epochs, lr, optimizer, batch_size : training of the encoder (lsalsa.core.training.train)
    objective : "codes" (default, the paper's Eq. 15) or "separation" (MCA: ``fit`` takes the
        true ``components`` of each mixture)
    random_state : int seed for dictionary learning and training
    dtype : precision of the products in ``transform``: None (the encoder's, float64) or
        "bfloat16" ("float16" on CUDA); the codes stay float64

    Attributes
    ----------
    encoder_ : the trained :class:`lsalsa.UnrolledEncoder` (float64)
    dictionaries_ : list of (M, N_i) arrays used
    n_features_in_ : M
    """

    def __init__(self, kind: str = "lsalsa", dictionaries=None, alphas=0.1, depth: int = 5,
                 mu: float = DEFAULT_MU, n_atoms: int | None = None, dict_epochs: int = 5,
                 epochs: int = 20, lr: float = DEFAULTS["lr"],
                 optimizer: str = DEFAULTS["optimizer"],
                 batch_size: int = DEFAULTS["batch_size"],
                 objective: str = DEFAULTS["objective"], random_state: int = 0,
                 dtype: str | None = None):
        self.kind = kind
        self.dictionaries = dictionaries
        self.alphas = alphas
        self.depth = depth
        self.mu = mu
        self.n_atoms = n_atoms
        self.dict_epochs = dict_epochs
        self.epochs = epochs
        self.lr = lr
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.objective = objective
        self.random_state = random_state
        self.dtype = dtype

    def fit(self, X, y=None, codes=None, components=None):
        """Train the encoder on signals ``X`` (P, M) and their optimal ``codes`` (P, N), or
        with ``objective="separation"`` their true ``components`` side by side (P, D * M).

        ``y`` is ignored (scikit-learn's transformer convention); pass references as ``codes``
        or ``components``, e.g. ``pipeline.fit(X, coder__codes=C)``.
        """
        X = validate_data(self, X, dtype=np.float64)
        inference_dtype(self.dtype, "cpu", torch.float64)  # refused before any training
        separating = self.objective == "separation"
        if separating and components is None:
            raise InputError("objective 'separation' needs fit(X, components=...), the true "
                             "components of each mixture side by side (P, D * M)")
        if not separating and components is not None:
            raise InputError("components are the references of objective='separation'")
        seed = 0 if self.random_state is None else int(self.random_state)
        if self.dictionaries is None:
            n_atoms = self.n_atoms or X.shape[1]
            alpha = float(np.atleast_1d(self.alphas)[0])
            dictionaries = [learn_dictionary(X, n_atoms, alpha, epochs=self.dict_epochs,
                                             seed=seed).dictionary]
        elif isinstance(self.dictionaries, np.ndarray | torch.Tensor):
            dictionaries = [np.asarray(self.dictionaries)]
        else:
            dictionaries = [np.asarray(d) for d in self.dictionaries]
        dictionaries = [d.astype(np.float64) for d in dictionaries]
        if dictionaries[0].shape[0] != X.shape[1]:
            raise InputError(f"X has {X.shape[1]} features but the dictionaries have "
                             f"{dictionaries[0].shape[0]} rows")
        alphas = np.broadcast_to(np.atleast_1d(np.asarray(self.alphas, dtype=float)),
                                 (len(dictionaries),)).tolist()
        if separating:
            references = np.asarray(components, dtype=np.float64)
        elif codes is None:
            references, _ = compute_codes(X, dictionaries, alphas)
        else:
            references = np.asarray(codes, dtype=np.float64)
        encoder = build_encoder(self.kind, dictionaries, alphas, self.depth,
                                self.mu if self.kind == "lsalsa" else None)
        train(encoder, X, references, optimizer=self.optimizer, lr=self.lr,
              batch_size=self.batch_size, max_epochs=self.epochs, seed=seed,
              objective=self.objective)
        self.encoder_ = encoder
        self.dictionaries_ = dictionaries
        return self

    def transform(self, X):
        """Codes (P, N) of signals ``X`` (P, M)."""
        check_is_fitted(self, "encoder_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self.encoder_.encode(X, dtype=self.dtype)

    def inverse_transform(self, codes):
        """Signals ``A x`` reconstructed from codes (P, N)."""
        check_is_fitted(self, "encoder_")
        A = np.concatenate(self.dictionaries_, axis=1)
        return np.asarray(codes, dtype=np.float64) @ A.T

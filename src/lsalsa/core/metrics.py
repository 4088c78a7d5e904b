"""The metrics of docs/DESIGN.md section 6, computed from arrays (no files, no plotting).

Code error (per sample, and an encoder's mean over a data set) and sparsity per sample, PSNR
of separated components, encode timing, iterations to match and the expert classifier of
Section 6. The paper's targets are checked against the stored results by
:mod:`lsalsa.workflow.targets`.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Iterator

import numpy as np
import torch

from .. import checks
from ..errors import InputError
from ._arrays import as_batch


def code_rmse(estimate: torch.Tensor, optimal: torch.Tensor) -> torch.Tensor:
    """Per-sample ``sqrt(mean_j (x_hat_j - x*_j)^2)`` (docs/DESIGN.md section 6), shape (B,)."""
    return (estimate - optimal).pow(2).mean(dim=1).sqrt()


def component_rmse(encoder: torch.nn.Module, codes: torch.Tensor,
                   truth: torch.Tensor) -> torch.Tensor:
    """Per-sample RMSE of the components ``A_i x_i`` of ``codes`` (B, N) against the true
    components side by side, ``truth`` (B, D * M), shape (B,)."""
    problem = encoder.problem
    parts = [c @ a.T for c, a in zip(problem.split(codes), problem.blocks, strict=True)]
    return (torch.cat(parts, dim=1) - truth).pow(2).mean(dim=1).sqrt()


@torch.no_grad()
def validation_rmse(encoder: torch.nn.Module, signals, references, batch_size: int = 4096,
                    objective: str = "codes") -> float:
    """Mean over samples of :func:`code_rmse` of ``encoder(signals)`` against ``references``, the
    optimal codes; with ``objective="separation"`` of :func:`component_rmse` against
    ``references``, the true components side by side."""
    param = next(encoder.parameters())
    error = code_rmse if objective == "codes" else (
        lambda codes, truth: component_rmse(encoder, codes, truth))
    total, count = 0.0, 0
    for start in range(0, len(signals), batch_size):
        rows = slice(start, start + batch_size)
        Y = as_batch(signals[rows], param)
        X = as_batch(references[rows], param)
        total += float(error(encoder(Y), X).sum())
        count += Y.shape[0]
    return total / count


def rmse_per_sample(estimate, optimal) -> np.ndarray:
    """``sqrt(mean_j (x_hat_j - x*_j)^2)`` per sample, (P,) float64 (via ``code_rmse``)."""
    est = torch.as_tensor(np.asarray(estimate), dtype=torch.float64)
    opt = torch.as_tensor(np.asarray(optimal), dtype=torch.float64)
    return code_rmse(est, opt).numpy()


def sparsity_per_sample(codes) -> np.ndarray:
    """Fraction of code entries exactly zero, per sample, (P,) float64."""
    return (np.asarray(codes) == 0).mean(axis=1, dtype=np.float64)


def psnr(estimate: np.ndarray, truth: np.ndarray, peak: float = 1.0) -> float:
    """PSNR in dB of ``estimate`` against ``truth`` over the whole set (one mean squared error)."""
    mse = float(np.mean((np.asarray(estimate, np.float64) - np.asarray(truth, np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(peak ** 2 / mse)


def psnr_per_sample(estimate: np.ndarray, truth: np.ndarray, peak: float = 1.0) -> np.ndarray:
    """PSNR in dB of each row of ``estimate`` against ``truth``, (P,) float64 (inf where a row
    is exact)."""
    diff = np.asarray(estimate, np.float64) - np.asarray(truth, np.float64)
    mse = np.mean(diff ** 2, axis=1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(peak ** 2 / mse)


def separation_quality(parts: list, truth: list, sources: np.ndarray | None = None) -> dict:
    """How well the components ``parts`` (each (P, M)) match ``truth``: per component, the PSNR
    of the whole set's mean squared error (``psnr``) and the mean over mixtures of each
    mixture's PSNR (``psnr_per_mixture``), and with ``sources`` (a name per row) the same per
    source (``by_source``: also the count, and the spread of the per-mixture PSNR as its
    standard deviation over mixtures)."""
    def scores(rows) -> dict:
        per = [psnr_per_sample(p[rows], t[rows]) for p, t in zip(parts, truth, strict=True)]
        return {"psnr": [psnr(p[rows], t[rows]) for p, t in zip(parts, truth, strict=True)],
                "psnr_per_mixture": [float(np.mean(v)) for v in per],
                "psnr_per_mixture_std": [float(np.std(v)) for v in per],
                "count": int(per[0].shape[0])}

    out = scores(slice(None))
    if sources is not None:
        names = np.asarray(sources)
        out["by_source"] = {str(name): scores(names == name) for name in np.unique(names)}
    return out


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to ``threads`` (None: left as it is) inside the
    block, and restored after it: a library call must not change its caller's process."""
    checks.positive_int(threads, "threads", none=True)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def time_encode(encode: Callable[[], object], repeats: int, sync: Callable[[], None] | None = None
                ) -> float:
    """Median wall-clock seconds of ``encode()`` over ``repeats`` runs after one warm-up."""
    checks.positive_int(repeats, "repeats")
    sync = sync or (lambda: None)
    encode()
    sync()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        encode()
        sync()
        times.append(time.perf_counter() - began)
    return float(statistics.median(times))


def classic_encoder(method: str, dictionaries, setting: dict, T: int, Y: torch.Tensor,
                    batch_size: int, dtype=None, fused: bool = False) -> Callable[[], object]:
    """A call that encodes ``Y`` with FISTA(T) or SALSA(T) at ``setting`` (alpha, mu), its
    operators formed here, outside any timed region, and run in place as a deployed solver
    (and the learned encoders) would. SALSA runs as an untrained LSALSA, which equals SALSA(T)
    (tested) through the very code a trained one uses; FISTA through the solvers' own loop.
    ``dtype``: the precision of the products, as the encoders' ``dtype=``; ``fused`` (SALSA
    only, an unrolled encoder): its layers through torch.compile, as ``encode(fused=True)``."""
    from .encoders import LSALSA
    from .operators import inference_dtype, ista_operators
    from .problem import make_problem
    from .solvers.classic import codes_with_operators

    low = inference_dtype(dtype, Y.device, Y.dtype)
    if method == "salsa":
        encoder = LSALSA(dictionaries, setting["alpha"], T, mu=setting["mu"]).to(Y.device)
        return lambda: encoder.encode(Y, batch_size=batch_size, dtype=low, fused=fused)
    if method != "fista":
        raise InputError(f"no timed encoder for {method!r}; choose fista or salsa")
    if fused:
        raise InputError("fused layers are for unrolled encoders (SALSA runs as one); FISTA "
                         "runs the solvers' loop")
    operators = ista_operators(make_problem(dictionaries, setting["alpha"])[0].to(
        device=Y.device))
    return lambda: codes_with_operators(operators, Y, "fista", T, batch_size, low=low)


def salsa_by_psnr(signals, truth: list, dictionaries, settings: list[dict], depths) -> dict:
    """Per depth T, the SALSA setting (alpha, mu) of ``settings`` whose SALSA(T) separations
    of ``signals`` have the best mean PSNR over the components against ``truth`` (one array
    (B, M) per component): ``{T: {"alpha", "mu", "val_psnr_mean"}}``, the separation baseline
    of MCA, chosen on validation mixtures over the same grid as the code-RMSE selection."""
    from .encoders import components
    from .problem import make_problem
    from .solvers.classic import iterates

    best: dict[int, dict] = {int(T): {"val_psnr_mean": -math.inf} for T in depths}
    like = make_problem(dictionaries, 0.0)[0]  # the dtype and device of every setting's problem
    # A copy: torch warns on read-only memory maps.
    Y = torch.as_tensor(np.array(signals), dtype=like.dtype, device=like.device)
    with torch.inference_mode():
        for setting in settings:
            problem = make_problem(dictionaries, setting["alpha"])[0]
            for T, codes in iterates(problem, Y, "salsa", max(best), mu=setting["mu"]):
                if T in best:
                    parts = components(problem, codes.cpu().numpy())
                    score = float(np.mean([psnr(p, t) for p, t in zip(parts, truth,
                                                                       strict=True)]))
                    if score > best[T]["val_psnr_mean"]:  # ties keep the earlier setting
                        best[T] = {"alpha": [float(a) for a in problem.alphas],
                                   "mu": float(setting["mu"]), "val_psnr_mean": score}
    return best


def iterations_to_match(depths, mean_rmse, reference: float) -> int | None:
    """The smallest ``T`` in ``depths`` whose mean RMSE is at most ``reference`` (None: never)."""
    for T, value in sorted(zip(depths, mean_rmse, strict=True)):
        if value is not None and value <= reference:
            return int(T)
    return None


def image_features(codes: np.ndarray, image_index: np.ndarray) -> np.ndarray:
    """Concatenate the codes of all patches of each image: (n_images, patches * N).

    Patches are stored image by image (``image_index`` non-decreasing, equal counts).
    """
    codes = np.asarray(codes)
    image_index = np.asarray(image_index)
    if codes.ndim != 2 or codes.shape[0] == 0 or image_index.shape != (codes.shape[0],):
        raise InputError(f"codes {codes.shape} and image index {image_index.shape} must be "
                         "(P, N) and (P,) with P >= 1")
    if np.any(np.diff(image_index) < 0) or image_index[0] != 0:
        raise InputError("the image index must start at 0 and never decrease")
    counts = np.bincount(image_index)
    per = int(counts[0])
    if not (counts == per).all():
        raise InputError("every image must have the same number of patches")
    return codes.reshape(len(counts), per * codes.shape[1])


class ExpertClassifier:
    """Logistic regression trained on the optimal codes, scored on estimated codes (Sec. 6).

    Features longer than ``projection_dim`` go through a fixed Gaussian random projection
    ``G`` (``projection_dim x D``, entries N(0, 1/projection_dim), drawn with ``seed``).
    """

    def __init__(self, projection_dim: int = 500, C: float = 10.0, max_iter: int = 2000,
                 seed: int = 0):
        # Checked, and kept as given: describe() quotes them in results.json.
        checks.positive_int(projection_dim, "projection_dim")
        checks.positive_number(C, "C")
        checks.positive_int(max_iter, "max_iter")
        checks.non_negative_int(seed, "seed")
        self.projection_dim, self.C, self.max_iter, self.seed = projection_dim, C, max_iter, seed
        self.projection: np.ndarray | None = None
        self.model = None

    def _project(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, dtype=np.float64)
        return features if self.projection is None else features @ self.projection.T

    def fit(self, optimal_features: np.ndarray, labels: np.ndarray) -> float:
        """Fit on the optimal codes' features; return the error rate on them."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        D = optimal_features.shape[1]
        if D > self.projection_dim:
            rng = np.random.default_rng([self.seed, 11])
            self.projection = rng.standard_normal((self.projection_dim, D)) / math.sqrt(
                self.projection_dim)
        X = self._project(optimal_features)
        self.scaler = StandardScaler().fit(X)
        self.model = LogisticRegression(C=self.C, max_iter=self.max_iter)
        self.model.fit(self.scaler.transform(X), labels)
        return self.error(optimal_features, labels)

    def error(self, features: np.ndarray, labels: np.ndarray) -> float:
        """Error rate of the expert classifier on ``features`` (n, D)."""
        X = self.scaler.transform(self._project(features))
        return float(np.mean(self.model.predict(X) != np.asarray(labels)))

    def describe(self) -> dict:
        return {"model": "sklearn LogisticRegression (lbfgs) on standardised features",
                "C": self.C, "max_iter": self.max_iter, "seed": self.seed,
                "projection": None if self.projection is None else
                f"Gaussian {self.projection.shape[1]} -> {self.projection_dim}"}


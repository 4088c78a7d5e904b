"""Whole pictures as users have them: digits drawn onto held-out photographs, then separated.

Every test photograph of the offline pool (its sources give nothing to training or
validation) is resized, and held-out MNIST test digits are drawn onto it at random places
(each pixel the brighter of the digits covering it); photograph + digits is clipped to [0, 1],
as an image file must be. The truth is the photograph and the digits as the picture shows
them, ``picture - photograph`` (where the photograph is bright, clipping hides part of a
digit, and no method can restore what the picture does not hold; the models trained on
whole-picture mixtures learn the same). Each model
separates the picture with ``lsalsa separate``'s own code
(:func:`lsalsa.core.separation.separate_image`), and each component is scored against the
trivial answers: zeros for the digits, the picture itself for the photograph, and the
photograph also in the residual form (``lsalsa separate --residual 1``: the picture minus the
digits).
``benchmarks/separate_images.py`` prints the tables; ``lsalsa demo`` puts the numbers in its
summary and the shipped model's card.
"""

from __future__ import annotations

import warnings
from collections import defaultdict

import numpy as np
from PIL import Image

from ..core.metrics import psnr
from ..core.separation import separate_image

DIGIT_SIDE = 32
SIZE = (224, 224)        # the demo's pictures: the data protocol's photograph size
DIGITS = 12              # digits drawn on each picture
STRIDE = 8               # patch step (lsalsa separate --stride 8): each pixel in 16 patches
# The scores of one picture: the trivial answers, then per model (prefix "<model>_").
TRIVIAL = ("zeros", "picture")
SCORES = ("digits", "photo", "photo_residual")


def draw_digits(photo: np.ndarray, digits: np.ndarray, count: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` random digits (32x32, in [0, 1]) at random places on ``photo``: returns the
    picture, clipped to [0, 1], and the digits as it shows them (``picture - photo``; the
    brighter digit where two overlap)."""
    layer = np.zeros_like(photo)
    height, width = photo.shape
    for index in rng.choice(len(digits), size=count, replace=False):
        r = int(rng.integers(0, height - DIGIT_SIDE + 1))
        c = int(rng.integers(0, width - DIGIT_SIDE + 1))
        window = layer[r:r + DIGIT_SIDE, c:c + DIGIT_SIDE]
        np.maximum(window, digits[index].reshape(DIGIT_SIDE, DIGIT_SIDE), out=window)
    picture = np.clip(photo + layer, 0.0, 1.0).astype(np.float32)
    return picture, picture - photo.astype(np.float32)


def resized(photo: np.ndarray, width: int, height: int) -> np.ndarray:
    """A gray photograph in [0, 1] resized (bilinear) to ``width`` x ``height``."""
    image = Image.fromarray(photo.astype(np.float32), mode="F")
    return np.clip(np.asarray(image.resize((width, height), Image.BILINEAR)), 0, 1)


def held_out_digits(seed: int, data_dir=None) -> np.ndarray:
    """The MNIST test digits (32x32, vectorised) of the data split drawn from ``seed``."""
    from ..workflow.data.registry import load_source, resolve_source

    splits, _ = load_source(resolve_source("mnist", data_dir), seed, None, False)
    return splits["test"].images.reshape(len(splits["test"].images), -1)


def held_out_photographs() -> list[tuple[str, str, np.ndarray]]:
    """``(source, name, gray photograph at native size)`` for every test photograph; one
    whose file no longer matches its recorded SHA-256 is skipped with a warning, as data
    preparation skips it."""
    from ..workflow.data import photo_pool

    photos = photo_pool.natural_photo_list()
    out = []
    for path, name, curated in zip(photos.files, photos.names, photos.curated, strict=True):
        if photo_pool.PHOTO_SOURCES[curated.source].split != "test":
            continue
        try:
            out.append((curated.source, name,
                        photo_pool.load_curated_photo(path, curated.sha256, None)))
        except photo_pool.ChecksumMismatch as exc:
            warnings.warn(f"{exc}; left out of the whole pictures", stacklevel=2)
    return out


def score_pictures(models: dict, *, size: tuple[int, int] = SIZE, digits: int = DIGITS,
                   stride: int = STRIDE, seed: int = 0, data_dir=None,
                   photographs=None) -> dict[str, list[dict]]:
    """Per source of the test photographs (and ``"all"``), one dict per picture: the PSNR
    (dB) of the trivial answers (``zeros``, ``picture``) and, for every model of ``models``
    (name -> encoder), ``<name>_digits``, ``<name>_photo``, ``<name>_photo_residual``. The
    pictures are drawn from ``seed``: every model sees the same ones."""
    width, height = size
    digit_pool = held_out_digits(seed, data_dir)
    rng = np.random.default_rng(seed)
    rows: dict[str, list[dict]] = defaultdict(list)
    for source, _, photo in photographs or held_out_photographs():
        truth_photo = resized(photo, width, height)
        picture, shown = draw_digits(truth_photo, digit_pool, digits, rng)
        entry = {"zeros": psnr(np.zeros_like(shown), shown),
                 "picture": psnr(picture, truth_photo)}
        for name, model in models.items():
            parts = separate_image(model, picture, stride=stride)
            # The residual photograph's error is the digits' error (the truths add up to
            # the picture), so the two PSNRs agree; run the way lsalsa separate runs it.
            residual = separate_image(model, picture, stride=stride, residual=1)[1]
            entry.update({f"{name}_digits": psnr(parts[0], shown),
                          f"{name}_photo": psnr(parts[1], truth_photo),
                          f"{name}_photo_residual": psnr(residual, truth_photo)})
        rows[source].append(entry)
        rows["all"].append(entry)
    return dict(rows)


def summarize_pictures(rows: dict[str, list[dict]], models) -> dict:
    """Per source (and ``"all"``): pictures, the mean PSNR of every score and its standard
    deviation over the pictures, and each model's gain over the trivial answer (dB)."""
    out = {}
    for source, entries in rows.items():
        keys = list(TRIVIAL) + [f"{m}_{s}" for m in models for s in SCORES]
        stats = {k: {"mean_db": float(np.mean([e[k] for e in entries])),
                     "std_db": float(np.std([e[k] for e in entries]))} for k in keys}
        gains = {f"{m}_{s}": stats[f"{m}_{s}"]["mean_db"]
                 - stats["zeros" if s == "digits" else "picture"]["mean_db"]
                 for m in models for s in SCORES}
        out[source] = {"pictures": len(entries), "psnr": stats, "gain_over_trivial_db": gains}
    return out

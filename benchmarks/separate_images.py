"""Whole photographs as users have them: digits drawn onto held-out photographs, separated.

For every test photograph of the offline pool (its sources give nothing to training or
validation), at each size, the script draws ``--digits`` held-out MNIST test digits at random
places (each pixel the brighter of the digits covering it) and clips photograph + digits to
[0, 1], as an image file must be; the photograph and the digit layer are kept as the truth.
It then separates the picture with ``lsalsa separate``'s own code
(:func:`lsalsa.core.separation.separate_image`), with the model and with SALSA at the same
depth at the setting of best validation PSNR (from the model card or ``--salsa-*``), each
plainly and in the residual form (the photograph is the picture minus the digits), and scores
each component's PSNR against the trivial answers: zeros for the digits, the picture itself
for the photograph. Prints one table per size: per source and overall, the mean PSNR over
photographs and its standard deviation, and the gains over the trivial answers.

    python benchmarks/separate_images.py                      # the shipped model
    python benchmarks/separate_images.py --model runs/demo/lsalsa.safetensors \\
        --salsa-alpha 0.0625 0.1 --salsa-mu 1
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict

import numpy as np
from PIL import Image

from _common import print_header, set_threads
from lsalsa import LSALSA, load_encoder
from lsalsa.core.metrics import psnr
from lsalsa.core.separation import separate_image

DIGIT_SIDE = 32


def draw_digits(photo: np.ndarray, digits: np.ndarray, count: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` random digits (32x32, in [0, 1]) at random places on ``photo``: returns the
    picture, clipped to [0, 1], and the digit layer (the brighter digit where two overlap)."""
    layer = np.zeros_like(photo)
    height, width = photo.shape
    for index in rng.choice(len(digits), size=count, replace=False):
        r = int(rng.integers(0, height - DIGIT_SIDE + 1))
        c = int(rng.integers(0, width - DIGIT_SIDE + 1))
        window = layer[r:r + DIGIT_SIDE, c:c + DIGIT_SIDE]
        np.maximum(window, digits[index].reshape(DIGIT_SIDE, DIGIT_SIDE), out=window)
    return np.clip(photo + layer, 0.0, 1.0).astype(np.float32), layer


def resized(photo: np.ndarray, width: int, height: int) -> np.ndarray:
    """A gray photograph in [0, 1] resized (bilinear) to ``width`` x ``height``."""
    image = Image.fromarray(photo.astype(np.float32), mode="F")
    return np.clip(np.asarray(image.resize((width, height), Image.BILINEAR)), 0, 1)


def held_out_digits(seed: int) -> np.ndarray:
    """The MNIST test digits of the offline data (32x32, as the data sets split them)."""
    from lsalsa.workflow.data.registry import load_source, resolve_source

    source = resolve_source("mnist")
    splits, _ = load_source(source, seed, None, False)
    return splits["test"].images.reshape(len(splits["test"].images), -1)


def held_out_photographs() -> list[tuple[str, str, np.ndarray]]:
    """``(source, name, gray photograph at native size)`` for every test photograph."""
    from lsalsa.workflow.data import sources

    photos = sources.natural_photo_list()
    out = []
    for path, name, curated in zip(photos.files, photos.names, photos.curated, strict=True):
        if sources.PHOTO_SOURCES[curated.source].split == "test":
            out.append((curated.source, name, sources.load_curated_photo(
                path, curated.sha256, None)))
    return out


def score(parts: list[np.ndarray], picture: np.ndarray, truth: tuple) -> dict[str, float]:
    digits, photo = truth
    return {"digits": psnr(parts[0], digits), "photo": psnr(parts[1], photo),
            "photo_residual": psnr(picture - parts[0], photo)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="MCA model (default: the shipped one)")
    parser.add_argument("--salsa-alpha", type=float, nargs=2,
                        help="SALSA's alphas (default: the model card's best-PSNR setting)")
    parser.add_argument("--salsa-mu", type=float, help="SALSA's mu (default: the card's)")
    parser.add_argument("--sizes", nargs="+", default=["224x224", "448x320"],
                        help="WIDTHxHEIGHT of the pictures")
    parser.add_argument("--digits", type=int, default=12, help="digits per picture (12)")
    parser.add_argument("--stride", type=int, default=8, help="patch step (8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    print_header("separate_images.py", threads, argv)

    if args.model is None:
        from lsalsa.apps.shipped import load_shipped

        encoder, card = load_shipped()
        salsa = card["baseline"]
    else:
        encoder, salsa = load_encoder(args.model), {}
    alpha = args.salsa_alpha or salsa.get("alpha")
    mu = args.salsa_mu or salsa.get("mu")
    if alpha is None or mu is None:
        parser.error("give --salsa-alpha and --salsa-mu (no model card to read them from)")
    blocks = [b.detach().clone() for b in encoder.problem.blocks]
    baseline = LSALSA(blocks, list(alpha), encoder.depth, mu=mu)
    print(f"model: T = {encoder.depth}, {list(encoder.block_sizes)} atoms; SALSA at alpha "
          f"{list(alpha)}, mu {mu:g}; stride {args.stride}; {args.digits} digits per picture")
    digits = held_out_digits(args.seed)
    photographs = held_out_photographs()
    rng = np.random.default_rng(args.seed)
    for size in args.sizes:
        width, height = (int(v) for v in size.lower().split("x"))
        rows: dict[str, list[dict]] = defaultdict(list)
        for source, _, photo in photographs:
            truth_photo = resized(photo, width, height)
            picture, layer = draw_digits(truth_photo, digits, args.digits, rng)
            truth = (layer, truth_photo)
            entry = {"zeros": psnr(np.zeros_like(layer), layer),
                     "picture": psnr(picture, truth_photo)}
            for name, model in (("lsalsa", encoder), ("salsa", baseline)):
                parts = separate_image(model, picture, stride=args.stride)
                entry.update({f"{name}_{k}": v for k, v in score(parts, picture,
                                                                  truth).items()})
            rows[source].append(entry)
            rows["all"].append(entry)
        print_table(size, rows)
    return 0


COLUMNS = (("digits: zeros", "zeros"), ("LSALSA", "lsalsa_digits"), ("SALSA", "salsa_digits"),
           ("photo: picture", "picture"), ("LSALSA", "lsalsa_photo"),
           ("LSALSA resid.", "lsalsa_photo_residual"), ("SALSA", "salsa_photo"),
           ("SALSA resid.", "salsa_photo_residual"))


def print_table(size: str, rows: dict[str, list[dict]]) -> None:
    """Mean (std) PSNR in dB per source; then each method's gain over the trivial answer."""
    print(f"\n{size}: PSNR in dB, mean (std) over photographs")
    print("| source | n | " + " | ".join(c for c, _ in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    for source in sorted(rows, key=lambda s: (s == "all", s)):
        entries = rows[source]
        cells = []
        for _, key in COLUMNS:
            values = np.array([e[key] for e in entries])
            cells.append(f"{values.mean():.2f} ({values.std():.2f})")
        print(f"| {source} | {len(entries)} | " + " | ".join(cells) + " |")
    print(f"\n{size}: gains over the trivial answers (dB), mean over photographs, worst source")
    for label, key, trivial in (("digits, LSALSA", "lsalsa_digits", "zeros"),
                                ("digits, SALSA", "salsa_digits", "zeros"),
                                ("photo, LSALSA", "lsalsa_photo", "picture"),
                                ("photo, LSALSA residual", "lsalsa_photo_residual", "picture"),
                                ("photo, SALSA", "salsa_photo", "picture"),
                                ("photo, SALSA residual", "salsa_photo_residual", "picture")):
        gains = {s: float(np.mean([e[key] - e[trivial] for e in rows[s]])) for s in rows}
        worst = min((s for s in gains if s != "all"), key=gains.get)
        print(f"  {label:24s} {gains['all']:+.2f} (worst source {worst}: {gains[worst]:+.2f})")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())

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
    python benchmarks/separate_images.py --photos ~/photos/trip ~/photos/garden

``--photos`` takes folders of your own photographs instead, each folder one source: a check
on sources the project has never read.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from _common import print_header, set_threads
from lsalsa import LSALSA, load_encoder
from lsalsa.apps.pictures import (
    draw_digits,
    held_out_digits,
    held_out_photographs,
    resized,
    score_pictures,
    summarize_pictures,
)
from lsalsa.errors import InputError
from lsalsa.workflow.data.photo_files import IMAGE_SUFFIXES, load_photo
from lsalsa.workflow.data.sources import check_directory


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
    parser.add_argument("--photos", nargs="+", metavar="FOLDER",
                        help="folders of photographs to use instead of the test split, each "
                             "folder one source")
    parser.add_argument("--example", metavar="PNG",
                        help="also save the first picture of the first size (8-bit PNG), to "
                             "try lsalsa separate on")
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
    try:
        photographs = folder_photographs(args.photos) if args.photos else held_out_photographs()
    except InputError as exc:
        parser.error(str(exc))
    if args.example:  # the first picture scored below: same photograph, same draws
        from PIL import Image

        width, height = (int(v) for v in args.sizes[0].lower().split("x"))
        picture, _ = draw_digits(resized(photographs[0][2], width, height),
                                 held_out_digits(args.seed), args.digits,
                                 np.random.default_rng(args.seed))
        Image.fromarray(np.round(picture * 255).astype(np.uint8)).save(args.example)
        print(f"saved {args.example}: a picture of {photographs[0][1]}")
    models = {"lsalsa": encoder, "salsa": baseline}
    for size in args.sizes:
        width, height = (int(v) for v in size.lower().split("x"))
        rows = score_pictures(models, size=(width, height), digits=args.digits,
                              stride=args.stride, seed=args.seed, photographs=photographs)
        print_table(size, summarize_pictures(rows, models))
    return 0


def folder_photographs(folders: list[str]) -> list[tuple[str, str, np.ndarray]]:
    """``(source, name, gray photograph)`` for every image file in each folder, the folder's
    name being the source; a file that does not decode is a one-line error."""
    out = []
    for folder in folders:
        folder = check_directory(folder, "photo folder")
        files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"photo folder {folder} holds no image file")
        out += [(folder.name, f.name, load_photo(f, None)) for f in files]
    return out


COLUMNS = (("digits: zeros", "zeros"), ("LSALSA", "lsalsa_digits"), ("SALSA", "salsa_digits"),
           ("photo: picture", "picture"), ("LSALSA", "lsalsa_photo"),
           ("LSALSA resid.", "lsalsa_photo_residual"), ("SALSA", "salsa_photo"),
           ("SALSA resid.", "salsa_photo_residual"))


def print_table(size: str, summary: dict) -> None:
    """Mean (std) PSNR in dB per source; then each method's gain over the trivial answer."""
    print(f"\n{size}: PSNR in dB, mean (std) over photographs")
    print("| source | n | " + " | ".join(c for c, _ in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    for source in sorted(summary, key=lambda s: (s == "all", s)):
        stats = summary[source]["psnr"]
        cells = [f"{stats[key]['mean_db']:.2f} ({stats[key]['std_db']:.2f})"
                 for _, key in COLUMNS]
        print(f"| {source} | {summary[source]['pictures']} | " + " | ".join(cells) + " |")
    print(f"\n{size}: gains over the trivial answers (dB), mean over photographs, worst source")
    for label, key in (("digits, LSALSA", "lsalsa_digits"), ("digits, SALSA", "salsa_digits"),
                       ("photo, LSALSA", "lsalsa_photo"),
                       ("photo, LSALSA residual", "lsalsa_photo_residual"),
                       ("photo, SALSA", "salsa_photo"),
                       ("photo, SALSA residual", "salsa_photo_residual")):
        gains = {s: summary[s]["gain_over_trivial_db"][key] for s in summary}
        worst = min((s for s in gains if s != "all"), key=gains.get)
        print(f"  {label:24s} {gains['all']:+.2f} (worst source {worst}: {gains[worst]:+.2f})")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())

"""The small MCA model that ships with the package, so ``lsalsa separate photo.png`` works
without training first.

The model (``models/mnist-natural.safetensors``) is the demo's ``lsalsa-pic``: LSALSA trained
on the true components of mixtures made like the windows of whole pictures. Its card
(``models/mnist-natural.json``) says what it was trained on (data, sources, objective), how
it did per held-out source on the test mixtures and on whole pictures, the SALSA setting it is
compared with, and the file's SHA-256; a small check set (the first test mixtures, their
components side by side) with the card's numbers on it lets anyone verify that the file
reproduces them. ``lsalsa demo`` writes all three into ``runs/demo/shipped/``
(:func:`write_shipped`); copying them into ``src/lsalsa/apps/models/`` ships a rebuilt model.
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from ..core.encoders import UnrolledEncoder, components, load_encoder
from ..core.metrics import separation_quality
from ..errors import InputError
from ..io import atomic_path, read_json_object, save_npy, write_json
from ..workflow.data.download import sha256_file

NAME = "mnist-natural"
MODEL, CARD, CHECK = f"{NAME}.safetensors", f"{NAME}.json", f"{NAME}-check.npy"
CHECK_MIXTURES = 32  # mixtures in the check set
# What the card must say of the model; load_shipped compares them with the file's header.
MATCHED = ("kind", "depth", "mu", "alphas", "block_sizes")


@contextmanager
def shipped_files():
    """The folder of the shipped model, its card and its check set (inside the package)."""
    with resources.as_file(resources.files(__package__) / "models") as folder:
        yield folder


def check_numbers(encoder: UnrolledEncoder, check: np.ndarray) -> dict:
    """The model's separation of the check set (mixtures = the sum of ``check``'s
    components, (P, D, M)): both PSNRs per component."""
    truth = [check[:, i] for i in range(check.shape[1])]
    codes = encoder.encode(check.sum(axis=1, dtype=np.float32))
    quality = separation_quality(components(encoder, codes), truth)
    return {"psnr": quality["psnr"], "psnr_per_mixture": quality["psnr_per_mixture"]}


def load_shipped(device=None) -> tuple[UnrolledEncoder, dict]:
    """The shipped model and its card, verified: the file's SHA-256 is the card's, and the
    model is what the card says (kind, depth, mu, alphas, atoms)."""
    with shipped_files() as folder:
        return load_verified(folder, device)


def load_verified(folder: Path, device=None) -> tuple[UnrolledEncoder, dict]:
    """A model and its card from ``folder`` (as shipped, or as the demo wrote them),
    checked against each other."""
    card = read_json_object(folder / CARD, "the model card")
    if not isinstance(card.get("sha256"), str) or not isinstance(card.get("model"), dict):
        raise InputError(f"{folder / CARD} is not a model card: it lacks its sha256 or model "
                         "entry")
    model = folder / MODEL
    if not model.is_file():
        raise InputError(f"the model {model} is missing")
    if sha256_file(model) != card.get("sha256"):
        raise InputError(f"{model} does not match its card's SHA-256: the file was changed or "
                         "damaged")
    encoder = load_encoder(model, device=device)
    config = encoder.config()
    for key in MATCHED:
        if config[key] != card["model"].get(key):
            raise InputError(f"{model}: the card says {key} {card['model'].get(key)!r}, the "
                             f"file holds {config[key]!r}")
    return encoder, card


def write_shipped(folder: Path, model: Path, card: dict, check: np.ndarray) -> Path:
    """Write the model, its card and the check set into ``folder``: the card gets the file's
    SHA-256, the model's settings and its numbers on the check set."""
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / MODEL) as tmp:
        shutil.copyfile(model, tmp)
    encoder = load_encoder(folder / MODEL)
    save_npy(folder / CHECK, np.ascontiguousarray(check, dtype=np.float32))
    with torch.inference_mode():
        numbers = check_numbers(encoder, np.load(folder / CHECK))
    config = encoder.config()
    full = {**card, "file": MODEL, "sha256": sha256_file(folder / MODEL),
            "model": {key: config[key] for key in (*MATCHED, "M", "N", "learn_thresholds")},
            "check": {"file": CHECK, "mixtures": int(check.shape[0]), **numbers,
                      "what": "the first test mixtures; components side by side, (P, D, M)"}}
    write_json(folder / CARD, full)
    return folder / CARD


def card_summary(card: dict) -> str:
    """One line a user reads: what the model is and how it did on held-out photographs."""
    line = f"{card['file']}: LSALSA T = {card['model']['depth']} trained on {card['objective']}"
    pictures = card.get("pictures", {}).get("by_source", {})
    if "all" in pictures:  # whole pictures: what lsalsa separate is for
        gains = pictures["all"]["gain_over_trivial_db"]
        sources = sorted(s for s in pictures if s != "all")
        return (f"{line}; on whole pictures of held-out photographs ({', '.join(sources)}) "
                f"with drawn digits, at --stride {card['pictures'].get('stride', 8)}: digits "
                f"{gains['digits']:+.1f} dB over zeros, photograph {gains['photo']:+.1f} dB "
                "over the picture itself")
    test = card["test"]
    return (f"{line}; test mean PSNR digits/natural {test['psnr_per_mixture'][0]:.2f}/"
            f"{test['psnr_per_mixture'][1]:.2f} dB on photographs of "
            f"{', '.join(sorted(test['by_source']))}")


def read_check(folder: Path) -> np.ndarray:
    return np.load(folder / CHECK, allow_pickle=False)


"""Training throughput and peak memory of LSALSA on Fashion-MNIST 10x10 patches.

For T in --depths, trains LSALSA for --epochs epochs in one process and with 2 DDP processes
(gloo on CPU, NCCL with --device cuda) under ``torch.distributed.run``, with the same global
batch, and prints epochs/second and peak memory (max RSS per process from getrusage; on GPU
also torch.cuda.max_memory_allocated). Example (small)::

    .venv/bin/python benchmarks/training.py --images 500 --epochs 3 --depths 1 5 10

The dictionary is 100 unit-norm training patches (seeded) and the references are FISTA codes
(300 iterations): throughput does not depend on how optimal the references are.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FASHION = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


def make_data(folder: Path, n_images: int, seed: int) -> dict:
    import lsalsa
    from lsalsa.core.patches import extract_patches
    from lsalsa.workflow.data.sources import read_idx

    images = read_idx(FASHION, ndim=3)[:n_images].astype(np.float32) / 255
    patches = extract_patches(images, 10, stride=6)  # 16 patches of 10x10 per 28x28 image
    patches = patches[patches.std(axis=1) > 0.1]
    patches -= patches.mean(axis=1, keepdims=True)
    patches /= np.linalg.norm(patches, axis=1).mean()
    rng = np.random.default_rng(seed)
    A = patches[rng.choice(len(patches), 100, replace=False)].T.copy()
    A /= np.linalg.norm(A, axis=0)
    X = lsalsa.solve(patches, A, 0.1, method="fista", n_iter=300).codes
    for name, array in (("Y", patches), ("X", X), ("A", A)):
        np.save(folder / f"{name}.npy", array.astype(np.float32))
    return {"P": len(patches), "M": 100, "N": 100}


def worker(args) -> None:
    import torch

    import lsalsa
    from lsalsa.core.training import train
    from lsalsa.core.training.distributed import local_device

    torch.set_num_threads(args.threads)
    folder = Path(args.folder)
    Y, X = np.load(folder / "Y.npy"), np.load(folder / "X.npy")
    device = local_device(args.device)
    A = torch.as_tensor(np.load(folder / "A.npy"), device=device)
    encoder = lsalsa.LSALSA(A, 0.1, args.depth, mu=1.0)
    began = time.perf_counter()
    result = train(encoder, Y, X, lr=0.01, batch_size=args.batch_size, max_epochs=args.epochs,
                   rel_tol=0.0, seed=0)
    total = time.perf_counter() - began
    seconds = [h["seconds"] for h in result.history[1:]]
    steady = seconds[1:] or seconds  # the first epoch includes warm-up
    report = {"rank": int(os.environ.get("RANK", "0")), "epochs": result.epochs,
              "epochs_per_s": len(steady) / sum(steady), "total_s": total,
              "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "cuda_peak_mib": (torch.cuda.max_memory_allocated(device) / 2**20
                                if device.type == "cuda" else None)}
    (folder / f"result_{args.tag}_{report['rank']}.json").write_text(json.dumps(report))


def launch(args, folder: Path, depth: int, procs: int) -> list[dict]:
    tag = f"T{depth}_p{procs}"
    command = [sys.executable]
    if procs > 1:
        command += ["-m", "torch.distributed.run", f"--nproc_per_node={procs}", "--standalone"]
    command += [__file__, "--worker", "--folder", str(folder), "--tag", tag, "--depth",
                str(depth), "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                "--threads", str(args.threads), "--device", args.device]
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"worker {tag} failed:\n{done.stderr[-4000:]}")
    return [json.loads(f.read_text()) for f in sorted(folder.glob(f"result_{tag}_*.json"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="Fashion-MNIST images used")
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 5, 10])
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64, help="global mini-batch")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--tag", help=argparse.SUPPRESS)
    parser.add_argument("--depth", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if not FASHION.exists():
        sys.exit(f"Fashion-MNIST not found at {FASHION} (apt-get install dataset-fashion-mnist)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shape = make_data(folder, args.images, args.seed)
        print(f"LSALSA training, Fashion-MNIST 10x10 patches: P={shape['P']}, M=N=100, "
              f"global batch {args.batch_size}, {args.epochs} epochs, {args.threads} thread(s) "
              f"per process, device {args.device}, {os.cpu_count()} CPUs")
        lines = []
        for depth in args.depths:
            for procs in args.procs:
                reports = launch(args, folder, depth, procs)
                rate = min(r["epochs_per_s"] for r in reports)  # the slowest rank sets the pace
                rss = max(r["max_rss_mib"] for r in reports)
                cuda = reports[0]["cuda_peak_mib"]
                lines.append(f"{depth:>3} {procs:>5} {rate:>9.2f} {rate * shape['P']:>10.0f} "
                             f"{rss:>17.0f} {'-' if cuda is None else f'{cuda:.1f}':>14}")
        header = (f"{'T':>3} {'procs':>5} {'epochs/s':>9} {'samples/s':>10} "
                  f"{'max RSS/proc MiB':>17} {'CUDA peak MiB':>14}")
        print("\n".join([header, "-" * len(header), *lines]))


if __name__ == "__main__":
    main()

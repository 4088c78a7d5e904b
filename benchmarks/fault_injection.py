"""Fault injection: damaged model files and checkpoints, and commands killed mid-write.

Part 1, files (in this process). A small LSALSA model file and a training checkpoint (with its
best-epoch and anchor sets and Adam's state) are damaged one fault at a time, and each damaged
copy is loaded (``load_encoder`` / ``load_checkpoint``):

- one flipped bit at several places of every tensor;
- one flipped bit at every byte of the header (the length prefix, every metadata value, every
  tensor's dtype, shape and offsets, the JSON structure, the padding);
- one flipped bit in every field of the JSON inside the header (each config, state and
  optimizer field);
- value edits that keep the stored checksums (``kind`` lsalsa -> lista, ``mu`` 10 -> 1,
  ``depth`` 2.7 / "2" / true / 1e9, ``format_version`` 0 / -1 / true, a config of null or a
  list, ...), as a hand edit would;
- the same edits with fresh checksums ("resealed"): a consistent file that only the type and
  range checks can refuse. Two consistent edits that describe another valid model (LSALSA
  weights relabelled LISTA, another mu) are shown as expected acceptances: a checksum detects
  damage, it does not authenticate.

Every fault must be refused with one line (an ``InputError``); a load that succeeds is a
silent acceptance, any other exception a crash.

Part 2, signals. ``lsalsa encode``, ``lsalsa separate`` and ``lsalsa train --resume`` run on
small generated inputs. Each trial starts the command and sends SIGTERM or SIGKILL either at a
random (seeded) point of its writing time, or as soon as a temporary file or staging folder
shows (so that every command is also caught mid-write). After SIGTERM nothing may be left
behind (exit 143 and one line, unless the work was already done); after either signal, the
same command is run again in the same folder and must exit 0, leave no hidden temporary or
staging folder anywhere, and write the same output as an uninterrupted run (train: the same
weights bit for bit, since a resumed run continues exactly).

Prints a table per part and exits 1 on any silent acceptance, crash, leftover or wrong output.
About 3 minutes on 2 idle cores with the defaults::

    python benchmarks/fault_injection.py [--trials 2] [--seed 0] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))  # this checkout's lsalsa, also for the commands below
sys.path.insert(1, str(Path(__file__).resolve().parent))
import lsalsa  # noqa: E402
from _common import markdown_table, print_header, random_dictionary  # noqa: E402
from lsalsa import InputError, load_encoder  # noqa: E402
from lsalsa.io import DIGEST, MANIFEST, write_safetensors  # noqa: E402
from lsalsa.workflow.checkpoint import load_checkpoint  # noqa: E402
from lsalsa.workflow.training_run import train_in_dir  # noqa: E402

CLI = [sys.executable, "-c", "import sys; from lsalsa.cli import main; sys.exit(main())"]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])]),
    "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}


# == part 1: damaged files ====================================================================

def outcome(load: Callable, path: Path) -> str:
    """"refused" (one-line InputError), "accepted" or "crashed (<exception>)"."""
    try:
        load(path)
    except InputError as exc:
        return "refused" if "\n" not in str(exc) else "crashed (multi-line message)"
    except Exception as exc:  # any other exception is what we look for
        return f"crashed ({type(exc).__name__}: {exc})"
    return "accepted"


def split(path: Path) -> tuple[bytes, dict, bytes]:
    """``(raw header, parsed header, data)`` of a safetensors file (raw: with the prefix)."""
    data = path.read_bytes()
    size = int.from_bytes(data[:8], "little")
    return data[:8 + size], json.loads(data[8:8 + size]), data[8 + size:]


def assemble(header: dict, data: bytes) -> bytes:
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data


def spans(text: str, start: int = 0) -> dict[str, tuple[int, int]]:
    """Where the value of each field of the JSON object at ``text[start]`` lies."""
    decoder, blank = json.JSONDecoder(), re.compile(r"\s*")
    found = {}
    i = blank.match(text, start + 1).end()
    while text[i] != "}":
        key, i = decoder.raw_decode(text, i)
        i = blank.match(text, blank.match(text, i).end() + 1).end()  # past the colon
        _, end = decoder.raw_decode(text, i)
        found[key] = (i, end)
        i = blank.match(text, end).end()
        if text[i] == ",":
            i = blank.match(text, i + 1).end()
    return found


def header_fields(raw: bytes) -> list[str]:
    """For every byte of the raw header, what it belongs to: the length prefix, a metadata
    value, a tensor's dtype / shape / offsets, or the keys, braces and padding."""
    text = raw[8:].decode()
    labels = ["length prefix"] * 8 + ["keys, braces, padding"] * len(text)
    for key, (begin, _) in spans(text).items():
        for field, (first, last) in spans(text, begin).items():
            label = f"metadata {field}" if key == "__metadata__" else f"tensor table: {field}"
            labels[8 + first:8 + last] = [label] * (last - first)
    return labels


class Tally:
    """Rows of the files table: (file, fault, where, expected) -> Counter of outcomes."""

    def __init__(self):
        self.rows: dict[tuple, Counter] = {}
        self.examples: dict[tuple, str] = {}

    def add(self, key: tuple, result: str) -> None:
        kind = result.split(" ")[0]
        self.rows.setdefault(key, Counter())[kind] += 1
        if kind == "crashed":
            self.examples.setdefault(key, result)

    def failures(self) -> int:
        bad = 0
        for (_, _, _, expect), counts in self.rows.items():
            bad += counts["crashed"] + (counts["accepted"] if expect == "refuse"
                                        else counts["refused"])
        return bad

    def table(self) -> str:
        rows = [[*key, sum(c.values()), c["refused"], c["accepted"], c["crashed"]]
                for key, c in self.rows.items()]
        return markdown_table(["file", "fault", "where", "expected", "cases", "refused",
                               "accepted", "crashed"], rows)


def flip_tensors(tally: Tally, what: str, load, good: Path, bad: Path, rng) -> None:
    raw, header, data = split(good)
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        first, last = entry["data_offsets"]
        spots = {first, last - 1, *rng.integers(first, last, size=4).tolist()}
        for spot in sorted(spots):
            damaged = bytearray(data)
            damaged[spot] ^= 0x01
            bad.write_bytes(raw + bytes(damaged))
            group = name if what == "model" else f"{name.split('.')[0]}.* tensors"
            tally.add((what, "bit flip in the data", group, "refuse"), outcome(load, bad))


def flip_header(tally: Tally, what: str, load, good: Path, bad: Path) -> None:
    raw, _, data = split(good)
    for spot, label in enumerate(header_fields(raw)):
        damaged = bytearray(raw)
        damaged[spot] ^= 0x01
        bad.write_bytes(bytes(damaged) + data)
        tally.add((what, "bit flip in the header", label, "refuse"), outcome(load, bad))


def flip_json_fields(tally: Tally, what: str, load, good: Path, bad: Path, key: str) -> None:
    """One flipped bit in the value of each field of the JSON stored under ``key``."""
    _, header, data = split(good)
    text = header["__metadata__"][key]
    for start, end in spans(text).values():
        spot = (start + end) // 2
        edited = text[:spot] + chr(ord(text[spot]) ^ 0x01) + text[spot + 1:]
        meta = {**header["__metadata__"], key: edited}
        bad.write_bytes(assemble({**header, "__metadata__": meta}, data))
        tally.add((what, "bit flip in each field", f"metadata {key}", "refuse"),
                  outcome(load, bad))


def edit(tally: Tally, what: str, load, good: Path, bad: Path, key: str, change, label: str,
         *, reseal: bool, expect: str = "refuse") -> None:
    """Change the JSON under metadata ``key`` (``change(value) -> value``), keeping the old
    checksums or sealing the file afresh."""
    from safetensors.torch import load_file

    _, header, data = split(good)
    meta = dict(header["__metadata__"])
    meta[key] = change(meta[key])
    if reseal:
        kept = {k: v for k, v in meta.items() if k not in (MANIFEST, DIGEST)}
        write_safetensors(bad, load_file(str(good)), kept)
    else:
        bad.write_bytes(assemble({**header, "__metadata__": meta}, data))
    tally.add((what, "edit (checksums kept; resealed)", label, expect), outcome(load, bad))


def with_field(field: str, value) -> Callable[[str], str]:
    def change(text: str) -> str:
        decoded = json.loads(text)
        if field is None:
            return json.dumps(value)
        decoded[field] = value
        return json.dumps(decoded)
    return change


def without_field(field: str) -> Callable[[str], str]:
    return lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != field})


MODEL_EDITS = [  # (field, new value, label); None: the whole config
    ("kind", "lista", "kind lsalsa -> lista"), ("kind", "fista", "kind fista"),
    ("mu", 1.0, "mu 10 -> 1"), ("mu", True, "mu true"), ("mu", "10", 'mu "10"'),
    ("mu", float("nan"), "mu NaN"), ("mu", float("inf"), "mu Infinity"), ("mu", -1.0, "mu -1"),
    ("depth", 2.7, "depth 2.7"), ("depth", "2", 'depth "2"'), ("depth", True, "depth true"),
    ("depth", 10 ** 9, "depth 1e9"), ("depth", 0, "depth 0"), ("depth", -1, "depth -1"),
    ("format_version", 0, "format_version 0"), ("format_version", -1, "format_version -1"),
    ("format_version", True, "format_version true"), ("format_version", "3",
                                                       'format_version "3"'),
    ("format_version", 2, "format_version 2 (older)"),
    ("alphas", [True, 0.2], "alphas [true, 0.2]"), ("alphas", [-0.1, 0.2], "alphas negative"),
    ("alphas", [0.1], "alphas, one too few"), ("block_sizes", [12.0, 12], "block_sizes float"),
    ("block_sizes", [12, 11], "block_sizes sum != N"), ("M", 17, "M 16 -> 17"),
    ("N", "24", 'N "24"'), ("untied", 1, "untied 1"), ("learn_thresholds", "yes",
                                                       'learn_thresholds "yes"'),
    ("dtype", "float64", "dtype float32 -> float64"), ("dictionary_hash", "0" * 16,
                                                        "dictionary_hash"),
    ("lsalsa_version", 3, "lsalsa_version 3"), (None, None, "config null"),
    (None, [1, 2], "config a list"), (None, "lsalsa", "config a string"),
    ("surprise", 1, "an unknown field"),
]


def model_part(tally: Tally, work: Path, rng) -> None:
    A = random_dictionary(rng, 16, 24)
    model = lsalsa.LSALSA([A[:, :12], A[:, 12:]], [0.1, 0.2], depth=3, mu=10.0)
    good = model.save(work / "model.safetensors", extra={"note": "fault injection"})
    bad = work / "bad.safetensors"
    flip_tensors(tally, "model", load_encoder, good, bad, rng)
    flip_header(tally, "model", load_encoder, good, bad)
    flip_json_fields(tally, "model", load_encoder, good, bad, "lsalsa_config")
    flip_json_fields(tally, "model", load_encoder, good, bad, "lsalsa_extra")
    for field, value, label in MODEL_EDITS:
        for reseal in (False, True):
            if reseal and label == "mu 10 -> 1":  # a valid model: see the end
                continue
            edit(tally, "model", load_encoder, good, bad, "lsalsa_config",
                 with_field(field, value), label, reseal=reseal)
    for field in ("depth", "mu", "kind"):
        edit(tally, "model", load_encoder, good, bad, "lsalsa_config", without_field(field),
             f"{field} missing", reseal=True)
    edit(tally, "model", load_encoder, good, bad, "lsalsa_extra", lambda _: "[]",
         "extra a list", reseal=True)
    # Consistent files describing another valid model: accepted by design.
    lista = lambda text: json.dumps({**json.loads(text), "kind": "lista", "mu": None})  # noqa: E731
    edit(tally, "model", load_encoder, good, bad, "lsalsa_config", lista,
         "kind lsalsa -> lista, mu null", reseal=True, expect="accept")
    edit(tally, "model", load_encoder, good, bad, "lsalsa_config", with_field("mu", 1.0),
         "mu 10 -> 1", reseal=True, expect="accept")


CHECKPOINT_EDITS = [  # (metadata key, change, label)
    ("format_version", lambda _: "0", 'format_version "0"'),
    ("format_version", lambda _: "-1", 'format_version "-1"'),
    ("format_version", lambda _: "true", 'format_version "true"'),
    ("format_version", lambda _: "2", 'format_version "2" (older)'),
    ("format", lambda _: "lsalsa-encoder", "format lsalsa-encoder"),
    ("state", lambda _: "null", "state null"), ("state", lambda _: "[1, 2]", "state a list"),
    ("state", with_field("epoch", 1), "epoch 2 -> 1"),
    ("state", with_field("epoch", 2.0), "epoch 2.0"), ("state", with_field("epoch", True),
                                                      "epoch true"),
    ("state", with_field("best_epoch", 7), "best_epoch after epoch"),
    ("state", with_field("history", None), "history null"),
    ("state", with_field("stopped", 0), "stopped 0"),
    ("state", with_field("scales", {"W": -1.0}), "scales negative"),
    ("state", with_field("generator", "AAAA"), "generator too short"),
    ("state", without_field("generator"), "generator missing"),
    ("optimizer", lambda _: "[1, 2]", "optimizer a list"),
    ("optimizer", with_field("scalars", 3), "optimizer scalars 3"),
    ("optimizer", with_field("param_groups", None), "optimizer param_groups null"),
]


def checkpoint_part(tally: Tally, work: Path, rng) -> None:
    A = random_dictionary(rng, 16, 24).astype(np.float64)
    Y = rng.standard_normal((60, 16))
    X = lsalsa.solve(Y, A, 0.2, method="fista", n_iter=100).codes
    run = work / "run"
    train_in_dir(run, lsalsa.LSALSA(A, 0.2, 3, mu=2.0, untied=True), Y[:50], X[:50],
                 val_signals=Y[50:], val_references=X[50:], anchor_decay=0.01, batch_size=10,
                 max_epochs=2, progress=False)
    good = run / "checkpoint.safetensors"
    bad = work / "bad.safetensors"
    flip_tensors(tally, "checkpoint", load_checkpoint, good, bad, rng)
    flip_header(tally, "checkpoint", load_checkpoint, good, bad)
    for key in ("state", "optimizer"):
        flip_json_fields(tally, "checkpoint", load_checkpoint, good, bad, key)
    for key, change, label in CHECKPOINT_EDITS:
        for reseal in (False, True):
            edit(tally, "checkpoint", load_checkpoint, good, bad, key, change, label,
                 reseal=reseal)


# == part 2: signals ==========================================================================

def leftovers(folder: Path) -> list[str]:
    """Hidden entries (every temporary and staging folder of the project is hidden) and
    ``*.tmp`` anywhere under ``folder``."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.name.startswith(".") or p.name.endswith(".tmp"))


def snapshot(folder: Path) -> dict[str, bytes]:
    """What a run produced, for comparison with an uninterrupted run."""
    files = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if path.suffix == ".npy":
            files[name] = np.load(path).tobytes()
        elif path.name == "model.safetensors":
            state = load_encoder(path).state_dict()
            files[name] = b"".join(state[k].numpy().tobytes() for k in sorted(state))
        elif path.suffix == ".png":
            files[name] = b"png"  # written from the .npy beside it; checked to exist
    return files


def make_inputs(work: Path, rng) -> dict[str, tuple[Callable[[Path], list[str]], str]]:
    """The three commands: a function of the trial folder giving the argv (after ``lsalsa``),
    and the output that the command writes last."""
    from PIL import Image

    inputs = work / "inputs"
    inputs.mkdir(parents=True)
    A = random_dictionary(rng, 64, 128)
    sc = lsalsa.LSALSA(A, 0.1, depth=5, mu=10.0).save(inputs / "sc.safetensors")
    mca = lsalsa.LSALSA([A[:, :64], A[:, 64:]], [0.1, 0.1], depth=5, mu=10.0).save(
        inputs / "mca.safetensors")
    np.save(inputs / "signals.npy", rng.standard_normal((80_000, 64)).astype(np.float32))
    Image.fromarray((rng.random((480, 480)) * 255).astype(np.uint8)).save(inputs / "in.png")
    # Training: a wide dictionary makes the checkpoint (4 MB) a good part of every epoch.
    B = random_dictionary(rng, 64, 512)
    Y = rng.standard_normal((160, 64)).astype(np.float32)
    X = lsalsa.solve(Y, B, 0.5, method="fista", n_iter=30).codes.astype(np.float32)
    np.save(inputs / "B.npy", B)
    np.save(inputs / "Y.npy", Y)
    np.save(inputs / "X.npy", X)
    return {
        "encode": (lambda d: ["encode", str(inputs / "signals.npy"), str(d / "codes.npy"),
                              "--model", str(sc), "--chunk-size", "4096", "--quiet"],
                   "codes.npy"),
        "separate": (lambda d: ["separate", str(inputs / "in.png"), "--model", str(mca),
                                "--out", str(d), "--stride", "2"], "in_separation.png"),
        "train": (lambda d: ["train", "--signals", str(inputs / "Y.npy"), "--references",
                             str(inputs / "X.npy"), "--dict", str(inputs / "B.npy"),
                             "--alpha", "0.5", "--mu", "10", "--depth", "2", "--epochs", "25",
                             "--batch-size", "144", "--patience", "0", "--rel-tol", "0",
                             "--run-dir", str(d), "--resume", "--quiet"],
                  "model.safetensors"),
    }


def start(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen([*CLI, *argv], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def wait_for(proc: subprocess.Popen, folder: Path, hidden: bool = False) -> float:
    """Seconds from now until ``folder`` holds anything (the command began to write), or with
    ``hidden`` a hidden entry (a temporary file or staging folder); or until it exits."""
    began = time.perf_counter()
    while proc.poll() is None:
        if folder.exists() and any(not hidden or p.name.startswith(".")
                                   for p in folder.iterdir()):
            break
        time.sleep(0.001)
    return time.perf_counter() - began


def reference(argv: list[str], folder: Path, final: str) -> tuple[dict, float]:
    """An uninterrupted run: its output, and how long it writes: from its first file to its
    last output (the interpreter's exit after that is not part of the work)."""
    proc = start(argv)
    wait_for(proc, folder)
    began = time.perf_counter()
    while proc.poll() is None and not (folder / final).exists():
        time.sleep(0.001)
    writing = time.perf_counter() - began
    _, err = proc.communicate(timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"reference run {argv[0]} failed ({proc.returncode}): {err}")
    return snapshot(folder), writing


def one_trial(argv: list[str], folder: Path, sig: signal.Signals, delay: float | None,
              expected: dict) -> tuple[Counter, list[str]]:
    """Start, signal after ``delay`` seconds of writing (None: as soon as a temporary shows),
    check, run again, check. Returns counts and the problems found."""
    stats, problems = Counter(), []
    proc = start(argv)
    if delay is None:
        wait_for(proc, folder, hidden=True)
    else:
        wait_for(proc, folder)
        time.sleep(delay)
    running = proc.poll() is None
    if running:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=600)
    debris = leftovers(folder)
    stats["mid-run"] += running
    stats["debris"] += bool(debris)
    if sig == signal.SIGTERM and running:
        handled = proc.returncode == 128 + signal.SIGTERM and err.strip() == "lsalsa: terminated"
        # A signal that lands after the work is done (during the interpreter's exit) finds
        # nothing to clean up: the output must then be complete.
        finished = proc.returncode in (0, -signal.SIGTERM) and snapshot(folder) == expected
        stats["handled"] += handled
        if debris or not (handled or finished):
            problems.append(f"SIGTERM: exit {proc.returncode}, debris {debris}, stderr "
                            f"{err.strip()[-200:]!r}")
    again = subprocess.run([*CLI, *argv], env=ENV, timeout=600, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    left = leftovers(folder)
    stats["leftovers"] += len(left)
    valid = again.returncode == 0 and snapshot(folder) == expected
    stats["valid"] += valid
    if left or not valid:
        problems.append(f"rerun: exit {again.returncode}, leftovers {left}, stderr "
                        f"{again.stderr.strip()[-200:]!r}")
    return stats, problems


def signal_part(work: Path, trials: int, seed: int) -> tuple[str, int]:
    rng = np.random.default_rng(seed)
    draw = random.Random(seed)
    commands = make_inputs(work, rng)
    rows, failures = [], 0
    for name, (argv_for, final) in commands.items():
        ref_dir = work / f"{name}-reference"
        if name == "encode":  # its output folder must exist
            ref_dir.mkdir()
        expected, writing = reference(argv_for(ref_dir), ref_dir, final)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for when, count in (("random", trials), ("on a temporary", 1)):
                total = Counter()
                for trial in range(count):
                    folder = work / f"{name}-{sig.name}-{when.replace(' ', '-')}-{trial}"
                    if name == "encode":
                        folder.mkdir()
                    delay = draw.uniform(0.0, writing) if when == "random" else None
                    stats, problems = one_trial(argv_for(folder), folder, sig, delay, expected)
                    total.update(stats)
                    failures += len(problems)
                    for problem in problems:
                        print(f"  {name} {sig.name} {when} trial {trial}: {problem}")
                rows.append([name, sig.name, when, count, total["mid-run"],
                             total["handled"] if sig == signal.SIGTERM else "-",
                             total["debris"], total["leftovers"], f"{total['valid']}/{count}"])
    header = ["command", "signal", "sent", "trials", "while running", "exit 143, one line",
              "debris after the signal", "leftovers after rerun", "rerun output valid"]
    return markdown_table(header, rows), failures


# == main ======================================================================================

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=2,
                        help="random kill points per command and signal (2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it")
    parser.add_argument("--skip-signals", action="store_true", help="only part 1")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print_header("fault_injection.py", torch.get_num_threads(), argv)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="lsalsa-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        began = time.perf_counter()
        tally = Tally()
        rng = np.random.default_rng(args.seed)
        (work / "model").mkdir(exist_ok=True)
        (work / "checkpoint").mkdir(exist_ok=True)
        model_part(tally, work / "model", rng)
        checkpoint_part(tally, work / "checkpoint", rng)
        grouped = tally
        print(f"\n## Damaged files ({time.perf_counter() - began:.0f} s)\n")
        print(grouped.table())
        for key, example in grouped.examples.items():
            print(f"crash: {key}: {example}")
        counts = Counter()
        for (_, _, _, expect), c in tally.rows.items():
            counts["cases"] += sum(c.values())
            counts["silent"] += c["accepted"] if expect == "refuse" else 0
            counts["crashed"] += c["crashed"]
        print("\nEach edit is tried twice where the table shows 2 cases: with the old checksums "
              "and resealed with fresh ones.")
        print(f"{counts['cases']} damaged files: {counts['silent']} silent acceptances, "
              f"{counts['crashed']} crashes")
        failures = tally.failures()
        if not args.skip_signals:
            began = time.perf_counter()
            table, signal_failures = signal_part(work / "signals", args.trials, args.seed)
            print(f"\n## Interrupted commands ({time.perf_counter() - began:.0f} s)\n")
            print(table)
            failures += signal_failures
        print(f"\n{'FAILED' if failures else 'OK'}: {failures} failures")
        return 1 if failures else 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

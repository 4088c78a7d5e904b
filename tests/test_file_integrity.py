"""Model files and checkpoints are verified, reproducible and shared like any other output;
interrupted runs leave no debris (issue 13, sections 3, 5 and 8).

The whole fault-injection campaign (every tensor and header field, SIGTERM and SIGKILL at
random points of real commands) is ``benchmarks/fault_injection.py``; these tests cover each
mechanism with representative cases.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import lsalsa
from conftest import random_dictionary
from lsalsa import InputError, load_encoder
from lsalsa.cli import main
from lsalsa.core.encoders import FORMAT_VERSION, read_model_header
from lsalsa.io import (
    DIGEST,
    MANIFEST,
    TEMPORARY,
    Temporary,
    atomic_path,
    remove_stale_temporaries,
    write_safetensors,
)
from lsalsa.workflow.checkpoint import generator_state, load_checkpoint, save_checkpoint
from lsalsa.workflow.training_run import train_in_dir

# -- helpers: raw safetensors surgery ---------------------------------------------------------


def _header(path: Path) -> tuple[dict, int]:
    data = path.read_bytes()
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + size]), 8 + size


def _flip_tensor_byte(src: Path, dst: Path, name: str) -> None:
    """Flip the lowest bit of the first byte of tensor ``name``: a one-bit rot of the data."""
    header, start = _header(src)
    data = bytearray(src.read_bytes())
    data[start + header[name]["data_offsets"][0]] ^= 0x01
    dst.write_bytes(bytes(data))


def _edit_metadata(src: Path, dst: Path, edit) -> None:
    """Rewrite the header's metadata with ``edit(metadata)``, keeping the stored checksums:
    what a hand edit or a damaged header gives."""
    header, start = _header(src)
    edit(header["__metadata__"])
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    dst.write_bytes(len(text).to_bytes(8, "little") + text + src.read_bytes()[start:])


def _edit_config(src: Path, dst: Path, key: str, value, *, reseal: bool) -> None:
    """Set ``config[key] = value``; ``reseal`` writes fresh checksums (a consistent file that
    only the config's own checks can refuse); ``key`` None replaces the whole config."""
    header, _ = _header(src)
    meta = header["__metadata__"]
    config = json.loads(meta["lsalsa_config"])
    if key is None:
        config = value
    else:
        config[key] = value
    if not reseal:
        _edit_metadata(src, dst, lambda m: m.update(lsalsa_config=json.dumps(config)))
        return
    from safetensors.torch import load_file

    kept = {k: v for k, v in meta.items() if k not in (MANIFEST, DIGEST)}
    write_safetensors(dst, load_file(str(src)), {**kept, "lsalsa_config": json.dumps(config)})


def _refused(load, path, match: str | None = None) -> str:
    with pytest.raises(InputError, match=match) as info:
        load(path)
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.fixture
def model_file(rng, tmp_path) -> Path:
    A = random_dictionary(rng, 9, 12)
    encoder = lsalsa.LSALSA([A[:, :6], A[:, 6:]], [0.1, 0.2], depth=3, mu=10.0)
    return encoder.save(tmp_path / "model.safetensors", extra={"note": "fixture"})


@pytest.fixture
def checkpoint_file(rng, tmp_path) -> Path:
    A = random_dictionary(rng, 9, 12)
    encoder = lsalsa.LSALSA(A, 0.1, depth=2, mu=10.0)
    opt = torch.optim.Adam(encoder.parameters(), lr=0.01)
    encoder(torch.as_tensor(rng.standard_normal((4, 9)))).pow(2).sum().backward()
    opt.step()
    best = {k: v.detach().clone() for k, v in encoder.state_dict().items()}
    state = {"epoch": 1, "history": [{"epoch": 0, "loss": None}, {"epoch": 1, "loss": 0.5}],
             "best_epoch": 1, "stopped": "", "scales": {"W": 0.1, "S": 0.2, "thresholds": 0.01},
             "generator": generator_state(torch.Generator().manual_seed(0))}
    return save_checkpoint(tmp_path / "checkpoint.safetensors", encoder, opt, state,
                           {"best": best})


# -- section 3: every tensor and the header are verified --------------------------------------


@pytest.mark.parametrize("name", ["dictionary", "W", "S", "thresholds"])
def test_a_flipped_bit_in_any_model_tensor_is_refused(model_file, tmp_path, name):
    bad = tmp_path / "bad.safetensors"
    _flip_tensor_byte(model_file, bad, name)
    _refused(load_encoder, bad, f"tensor {name} does not match its checksum")
    load_encoder(model_file)  # the original is fine


@pytest.mark.parametrize("key,value", [
    ("kind", "lista"), ("mu", 1.0), ("depth", 2.7), ("depth", "2"), ("depth", True),
    ("depth", 4), ("format_version", 0), ("format_version", -1), ("format_version", True),
    (None, None), (None, [1, 2]), ("alphas", [0.1, 0.3]),
])
def test_header_edits_are_refused(model_file, tmp_path, key, value):
    """The edits the issue found accepted silently: the header checksum refuses each."""
    bad = tmp_path / "bad.safetensors"
    _edit_config(model_file, bad, key, value, reseal=False)
    _refused(load_encoder, bad)
    _refused(read_model_header, bad)


def test_edited_extra_and_manifest_are_refused(model_file, tmp_path):
    bad = tmp_path / "bad.safetensors"
    _edit_metadata(model_file, bad, lambda m: m.update(lsalsa_extra='{"note": "edited"}'))
    _refused(load_encoder, bad, "header does not match the checksum")
    _edit_metadata(model_file, bad, lambda m: m.pop(DIGEST))
    _refused(load_encoder, bad, "header does not match the checksum")


@pytest.mark.parametrize("key,value,match", [
    ("depth", 2.7, "depth must be an integer"),
    ("depth", "2", "depth must be an integer"),
    ("depth", True, "depth must be an integer"),
    ("depth", 10 ** 9, "depth must be an integer in 1..10000"),  # encode would hang
    ("depth", 0, "depth must be an integer"),
    ("format_version", 0, "format version 0"),
    ("format_version", -1, "format version -1"),
    ("format_version", True, "format version True"),
    ("format_version", 2, "format version 2"),  # an older file: refused with one line
    ("mu", True, "numeric mu"),
    ("mu", "10", "numeric mu"),
    ("mu", float("nan"), "numeric mu"),
    ("mu", -1.0, "numeric mu"),
    ("untied", 1, "untied must be true or false"),
    ("alphas", [True, 0.2], "alphas must be a list"),
    ("block_sizes", [6.0, 6], "block_sizes must be a list of integers"),
    ("M", "9", "M must be an integer"),
    ("dtype", "float16", "dtype must be one of"),
    ("kind", ["lsalsa"], "unknown encoder kind"),
    ("surprise", 1, "wrong fields \\(unknown surprise\\)"),
    (None, None, "not a JSON object"),
    (None, [1, 2], "not a JSON object"),
])
def test_config_types_are_checked_strictly(model_file, tmp_path, key, value, match):
    """A file whose checksums match (resealed after the edit) still needs a valid config."""
    bad = tmp_path / "bad.safetensors"
    _edit_config(model_file, bad, key, value, reseal=True)
    _refused(load_encoder, bad, match)


def test_a_lista_config_with_a_mu_is_refused(rng, tmp_path):
    path = lsalsa.LISTA(random_dictionary(rng, 9, 12), 0.1, 2).save(tmp_path / "l.safetensors")
    bad = tmp_path / "bad.safetensors"
    _edit_config(path, bad, "mu", 10.0, reseal=True)
    _refused(load_encoder, bad, "LISTA config has no mu")


def test_a_file_of_the_previous_format_is_refused_in_one_line(model_file, tmp_path):
    from safetensors.torch import load_file

    header, _ = _header(model_file)
    config = json.loads(header["__metadata__"]["lsalsa_config"])
    config["format_version"] = 2
    old = tmp_path / "old.safetensors"
    save_file(load_file(str(model_file)), str(old),
              metadata={"lsalsa_config": json.dumps(config)})
    message = _refused(load_encoder, old, f"reads version {FORMAT_VERSION}")
    assert "version 2" in message and "retrain" in message


@pytest.mark.parametrize("target", ["model.W", "optim.0.exp_avg", "optim.0.step", "best.S"])
def test_a_flipped_bit_in_any_checkpoint_tensor_is_refused(checkpoint_file, tmp_path, target):
    bad = tmp_path / "bad.safetensors"
    _flip_tensor_byte(checkpoint_file, bad, target)
    _refused(load_checkpoint, bad, f"tensor {target} does not match its checksum")
    load_checkpoint(checkpoint_file)


@pytest.mark.parametrize("key", ["state", "optimizer", "format_version"])
def test_an_edited_checkpoint_header_is_refused(checkpoint_file, tmp_path, key):
    bad = tmp_path / "bad.safetensors"

    def edit(meta):  # one byte: a digit of the epoch, the lr or the version
        text = meta[key]
        i = next(i for i, c in enumerate(text) if c.isdigit())
        meta[key] = text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1:]

    _edit_metadata(checkpoint_file, bad, edit)
    _refused(load_checkpoint, bad)


def test_a_malformed_but_sealed_checkpoint_is_refused_in_one_line(checkpoint_file, tmp_path):
    from safetensors.torch import load_file

    header, _ = _header(checkpoint_file)
    meta = {k: v for k, v in header["__metadata__"].items() if k not in (MANIFEST, DIGEST)}
    bad = tmp_path / "bad.safetensors"
    state = json.loads(meta["state"])
    for field, value in (("state", "null"), ("optimizer", "[1, 2]"),
                         ("state", json.dumps({**state, "epoch": "1"})),
                         ("state", json.dumps({**state, "best_epoch": 2})),
                         ("state", json.dumps({**state, "generator": "AAAA"})),
                         ("state", json.dumps({k: v for k, v in state.items() if k != "scales"}))):
        write_safetensors(bad, load_file(str(checkpoint_file)), {**meta, field: value})
        _refused(load_checkpoint, bad, "malformed header")


def test_checkpoints_of_version_3_still_load_and_kinds_do_not_mix(checkpoint_file, tmp_path):
    """Version 3 held only training checkpoints, without a kind: they load as training ones
    (an interrupted run resumes across the upgrade). A sealed checkpoint of another kind, or
    of another version, is refused in one line."""
    from safetensors.torch import load_file

    from lsalsa.workflow.checkpoint import write_checkpoint

    header, _ = _header(checkpoint_file)
    meta = {k: v for k, v in header["__metadata__"].items()
            if k not in (MANIFEST, DIGEST, "kind")}
    old = tmp_path / "v3.safetensors"
    write_safetensors(old, load_file(str(checkpoint_file)), {**meta, "format_version": "3"})
    model, _, state, _ = load_checkpoint(old)
    mine, _, my_state, _ = load_checkpoint(checkpoint_file)
    assert state == my_state and all(torch.equal(v, mine[k]) for k, v in model.items())
    write_safetensors(old, load_file(str(checkpoint_file)), {**meta, "format_version": "2"})
    _refused(load_checkpoint, old, "format version '2'")
    other = write_checkpoint(tmp_path / "d.safetensors", "dictionary",
                             {"dictionary": torch.zeros(2, 3)}, {"epoch": 1})
    _refused(load_checkpoint, other, "is a dictionary-learning checkpoint, not a training")


def test_resuming_from_a_damaged_checkpoint_is_refused(rng, tmp_path):
    A = random_dictionary(rng, 6, 8)
    Y = rng.standard_normal((40, 6))
    X = lsalsa.solve(Y, A, 0.2, method="fista", n_iter=100).codes
    run = tmp_path / "run"
    options = {"batch_size": 10, "max_epochs": 2, "progress": False}
    train_in_dir(run, lsalsa.LSALSA(A, 0.2, 2, mu=2.0), Y, X, **options)
    checkpoint = run / "checkpoint.safetensors"
    _flip_tensor_byte(checkpoint, checkpoint, "model.W")
    with pytest.raises(InputError, match="does not match its checksum"):
        train_in_dir(run, lsalsa.LSALSA(A, 0.2, 2, mu=2.0), Y, X, resume=True,
                     **{**options, "max_epochs": 2})


# -- section 8: model files are reproducible and have the usual permissions -------------------


@pytest.fixture
def umask_022():
    before = os.umask(0o022)
    yield
    os.umask(before)


def test_model_files_are_byte_identical_and_world_readable(rng, tmp_path, umask_022):
    A = random_dictionary(rng, 9, 12)
    encoder = lsalsa.LSALSA([A[:, :6], A[:, 6:]], [0.1, 0.2], depth=3, mu=10.0)
    extra = {"b": 1, "a": {"z": 2, "y": 3}}
    # Ten saves: safetensors alone orders the two metadata keys at random, per save.
    files = [encoder.save(tmp_path / f"m{i}.safetensors", extra=extra) for i in range(10)]
    assert len({f.read_bytes() for f in files}) == 1
    header, _ = _header(files[0])
    assert list(header) == sorted(header) and list(header["__metadata__"]) == sorted(
        header["__metadata__"])
    assert all(f.stat().st_mode & 0o777 == 0o644 for f in files)


def test_checkpoints_are_byte_identical_and_world_readable(checkpoint_file, tmp_path,
                                                           umask_022):
    model, optim, state, sets = load_checkpoint(checkpoint_file)
    encoder = lsalsa.LSALSA(model["dictionary"], 0.1, depth=2, mu=10.0)
    encoder.load_state_dict(model)
    opt = torch.optim.Adam(encoder.parameters(), lr=0.01)
    opt.load_state_dict(optim)
    files = [save_checkpoint(tmp_path / f"c{i}.safetensors", encoder, opt, state, sets)
             for i in range(5)]
    assert len({f.read_bytes() for f in files}) == 1
    assert all(f.stat().st_mode & 0o777 == 0o644 for f in files)


# -- section 5: stale temporaries are swept, live ones are not ---------------------------------

STALE = ".codes.npy.lsalsa-0123456789ab.tmp"


def test_sweep_removes_only_unlocked_temporaries_of_the_project(tmp_path):
    (tmp_path / STALE).write_bytes(b"debris")
    stale_dir = tmp_path / ".separate.lsalsa-00000000abcd.tmp"
    (stale_dir / "inner").mkdir(parents=True)
    (stale_dir / "inner" / "x.png").write_bytes(b"debris")
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    (tmp_path / ".link.lsalsa-0000000000ff.tmp").symlink_to(outside)
    foreign = [".codes.npy.abcdefgh.tmp", "notes.tmp", ".x.lsalsa-0123.tmp", "codes.npy"]
    for name in foreign:
        (tmp_path / name).write_bytes(b"not ours")
    with atomic_path(tmp_path / "live.npy") as live:
        live.write_bytes(b"being written")
        assert TEMPORARY.fullmatch(live.name)
        assert remove_stale_temporaries(tmp_path) == 2
        assert live.exists()  # its writer holds the lock
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*foreign, "outside.txt", ".link.lsalsa-0000000000ff.tmp", "live.npy"])
    assert outside.read_text() == "keep"


HOLDER = textwrap.dedent("""
    import sys, time
    from lsalsa.io import Temporary
    held = Temporary(sys.argv[1], "target.npy", directory=sys.argv[2] == "dir")
    print(held.path, flush=True)
    time.sleep(600)
""")


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_a_temporary_of_a_live_process_survives_until_it_is_killed(tmp_path, kind):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), kind],
                            stdout=subprocess.PIPE, text=True)
    try:
        held = Path(proc.stdout.readline().strip())
        assert TEMPORARY.fullmatch(held.name) and held.exists()
        assert remove_stale_temporaries(tmp_path) == 0 and held.exists()
        with Temporary(tmp_path, "target.npy"):  # a new writer of the same target
            assert held.exists()
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert held.exists()  # SIGKILL ran no clean-up: debris ...
    assert remove_stale_temporaries(tmp_path) == 1 and not held.exists()  # ... swept now
    assert list(tmp_path.iterdir()) == []


def test_a_temporary_left_unguarded_by_an_exception_is_removed_at_exit(tmp_path):
    """SIGTERM's exception may strike after a temporary exists but before the ``try`` or
    ``with`` that removes it is entered: the process removes it when it exits."""
    script = "import sys; from lsalsa.io import Temporary; Temporary(sys.argv[1], 'x.npy'); " \
             "Temporary(sys.argv[1], 'dir', directory=True); raise KeyboardInterrupt"
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True)
    assert proc.returncode != 0 and b"KeyboardInterrupt" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def _stale_in(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stale = folder / ".from-a-killed-run.lsalsa-0123456789ab.tmp"
    stale.write_bytes(b"debris")
    return stale


def test_writers_sweep_the_folders_they_write(rng, tmp_path, monkeypatch):
    from lsalsa.apps.streaming import encode_file
    from lsalsa.workflow.data.prepared import DatasetWriter
    from lsalsa.workflow.dictionaries import learn_with_checkpoints
    from lsalsa.workflow.report import figures
    from lsalsa.workflow.search import search

    A = random_dictionary(rng, 16, 8)
    encoder = lsalsa.LSALSA([A[:, :4], A[:, 4:]], [0.1, 0.1], depth=2, mu=2.0)
    Y = rng.standard_normal((30, 16)).astype(np.float32)
    np.save(tmp_path / "in.npy", Y)
    image = tmp_path / "in.png"
    Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8)).save(image)

    stale = _stale_in(tmp_path / "codes")
    encode_file(encoder, tmp_path / "in.npy", tmp_path / "codes" / "c.npy", progress=False)
    assert not stale.exists()

    stale = _stale_in(tmp_path / "separated")
    lsalsa.apps.separation.separate_files(encoder, [str(image)], tmp_path / "separated")
    assert not stale.exists()

    stale = _stale_in(tmp_path / "ck")
    learn_with_checkpoints(Y, 8, epochs=1, checkpoint_dir=tmp_path / "ck")
    assert not stale.exists()

    stale = _stale_in(tmp_path / "prepared")
    DatasetWriter(tmp_path / "prepared", "set").abort()
    assert not stale.exists() and list((tmp_path / "prepared").iterdir()) == []

    run = tmp_path / "run"
    stale = _stale_in(run / "figures")
    (run / "results.json").write_text(json.dumps(
        {"config": {"evaluation": {"sparsity_T": []}}, "kind": "sc"}))
    for name in ("rmse_vs_T", "rmse_vs_time", "sparsity_clouds"):
        monkeypatch.setattr(figures, name, lambda *args: None)
    figures.make_figures(run)
    assert not stale.exists()

    stale = _stale_in(tmp_path / "train")
    X = lsalsa.solve(Y.astype(np.float64), A, 0.1, method="fista", n_iter=50).codes
    train_in_dir(tmp_path / "train", lsalsa.LSALSA(A.astype(np.float32), 0.1, 1, mu=2.0), Y,
                 X.astype(np.float32), max_epochs=1, progress=False)
    assert not stale.exists()

    stale = _stale_in(tmp_path / "search")
    X32 = X.astype(np.float32)
    search(Y, X32, Y, X32, A, depths=[1], alphas=[0.1], methods=("lista",), epochs=1,
           run_dir=tmp_path / "search", progress=False)
    assert not stale.exists()


@pytest.mark.parametrize("command", ["solve", "show", "learn", "analyze"])
def test_commands_sweep_the_folders_they_write(rng, tmp_path, command):
    from test_dictionary import make_prepared

    A = random_dictionary(rng, 16, 8)
    np.save(tmp_path / "A.npy", A)
    np.save(tmp_path / "Y.npy", rng.standard_normal((5, 16)))
    out = tmp_path / "out"
    argv = {
        "solve": lambda: ["solve", str(tmp_path / "Y.npy"), str(out / "c.npy"), "--dict",
                          str(tmp_path / "A.npy"), "--alpha", "0.1"],
        "show": lambda: ["dictionary", "show", str(tmp_path / "A.npy"), "--out",
                         str(out / "a.png"), "--patch-shape", "4x4"],
        "learn": lambda: ["dictionary", "learn", "--data",
                          str(make_prepared(tmp_path, kind="sc", P=(40, 20))), "--alpha", "0.5",
                          "--epochs", "1", "--quiet", "--out", str(out / "d.npy")],
        "analyze": lambda: ["analyze", str(lsalsa.LSALSA(A, 0.1, 2, mu=2.0).save(
            tmp_path / "m.safetensors")), "--signals", str(tmp_path / "Y.npy"), "--out",
            str(out)],
    }[command]()
    stale = _stale_in(out)
    assert main(argv) == 0
    assert not stale.exists()


def test_code_sets_are_shared_like_other_outputs(rng, tmp_path, umask_022):
    from lsalsa.core.codes import compute_codes
    from lsalsa.workflow.code_sets import load_codes, save_codes

    A = rng.standard_normal((6, 8))
    A /= np.linalg.norm(A, axis=0)
    Y = rng.standard_normal((5, 6)).astype(np.float32)
    X, stats = compute_codes(Y, [A], [0.1])
    for _ in range(2):  # the second save replaces the first, leaving nothing else behind
        final = save_codes(tmp_path / "codes", {"train": X}, [A], [0.1],
                           stats={"train": stats}, overwrite=True)
    assert final.stat().st_mode & 0o777 == 0o755
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in final.iterdir())
    assert [p.name for p in tmp_path.iterdir()] == ["codes"]
    assert load_codes(final).alphas == (0.1,)


def test_prepared_data_sets_are_shared_like_other_outputs(tmp_path, umask_022):
    from lsalsa.workflow.data.prepared import DatasetWriter

    writer = DatasetWriter(tmp_path, "set")
    writer.save("train", "signals", np.zeros((2, 4), dtype=np.float32))
    final = writer.commit({"name": "set"})
    assert final.stat().st_mode & 0o777 == 0o755
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in final.iterdir())
    # Replacing it leaves only the new one, no staging or old copy.
    again = DatasetWriter(tmp_path, "set")
    again.save("train", "signals", np.ones((2, 4), dtype=np.float32))
    again.commit({"name": "set"})
    assert [p.name for p in tmp_path.iterdir()] == ["set"]
    assert np.load(final / "train_signals.npy")[0, 0] == 1


# -- section 5: SIGTERM runs the clean-up; SIGKILL debris goes on the next run ------------------

# The child stops inside the write (a temporary exists) and waits there for the signal.
STALLED = textwrap.dedent("""
    import sys, time
    import lsalsa.{module} as where
    from lsalsa.cli import main

    def stall(*args, **kwargs):
        print("writing", flush=True)
        time.sleep(600)

    where.check_finite_output = stall
    sys.exit(main(sys.argv[1:]))
""")


@pytest.fixture
def mca_setup(rng, tmp_path):
    A = random_dictionary(rng, 16, 8)
    model = lsalsa.LSALSA([A[:, :4], A[:, 4:]], [0.1, 0.1], depth=2, mu=2.0).save(
        tmp_path / "model.safetensors")
    np.save(tmp_path / "in.npy", rng.standard_normal((50, 16)).astype(np.float32))
    Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8)).save(tmp_path / "in.png")
    out = tmp_path / "out"
    out.mkdir()
    return {"encode": ("apps.streaming", ["encode", str(tmp_path / "in.npy"), str(out / "c.npy"),
                                     "--model", str(model), "--quiet"]),
            "separate": ("core.separation", ["separate", str(tmp_path / "in.png"), "--model",
                                        str(model), "--out", str(out)])}, out


def _stall(module: str, argv: list[str]) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", STALLED.format(module=module), *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "writing\n", proc.communicate()
    return proc


@pytest.mark.parametrize("command", ["encode", "separate"])
def test_sigterm_cleans_up_and_exits_143(mca_setup, command):
    commands, out = mca_setup
    proc = _stall(*commands[command])
    assert [p for p in out.iterdir() if TEMPORARY.fullmatch(p.name)]  # caught mid-write
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert err == "lsalsa: terminated\n"
    assert list(out.iterdir()) == []  # no temporary, no staging folder, no partial output


@pytest.mark.parametrize("command", ["encode", "separate"])
def test_sigkill_debris_is_removed_by_the_next_run(mca_setup, command, capsys):
    commands, out = mca_setup
    proc = _stall(*commands[command])
    proc.kill()
    proc.communicate(timeout=60)
    assert [p for p in out.iterdir() if TEMPORARY.fullmatch(p.name)]  # SIGKILL left debris
    assert main(commands[command][1]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert not [n for n in names if n.startswith(".")]
    assert names == (["c.npy"] if command == "encode" else [
        "in_component0.npy", "in_component0.png", "in_component1.npy", "in_component1.png",
        "in_separation.png"])

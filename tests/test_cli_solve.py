"""``lsalsa solve`` in-process: same codes as ``lsalsa.solve``; bad input: one line, no file."""

from __future__ import annotations

import numpy as np
import pytest

import lsalsa
from _numerics import code_error_bound, gap_rounding, iteration_error
from conftest import alias_of, random_dictionary
from lsalsa.cli import main

M, N1, N2 = 6, 5, 7


@pytest.fixture
def files(tmp_path, rng):
    Y = rng.standard_normal((4, M))
    A1, A2 = random_dictionary(rng, M, N1), random_dictionary(rng, M, N2)
    paths = {}
    for name, array in {"Y": Y, "A1": A1, "A2": A2, "nan": np.where(Y > 1, np.nan, Y),
                        "short": Y[:, :5], "empty": Y[:0], "vector": Y[0],
                        "complex": Y.astype(complex), "text": Y.astype(str),
                        "huge32": (Y / np.abs(Y).max() * 3e38).astype(np.float32),
                        "big": Y * 1e300, "scalar": np.array(3.0),
                        "zeros": np.zeros((M, N1))}.items():
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], array)
    paths["pickled"] = tmp_path / "pickled.npy"
    np.save(paths["pickled"], np.array([{"a": 1}], dtype=object), allow_pickle=True)
    paths["junk"] = tmp_path / "junk.npy"
    paths["junk"].write_text("not an array")
    return tmp_path, paths, (Y, A1, A2)


def files_in(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("method", ["ista", "fista", "salsa", "exact"])
def test_solve_end_to_end(files, capsys, method):
    folder, paths, (Y, A1, A2) = files
    out = folder / "codes.npy"
    n_iter = 30 if method != "exact" else 20000  # exact: run to its default gap bound
    argv = ["solve", str(paths["Y"]), str(out), "--dict", str(paths["A1"]), "--dict",
            str(paths["A2"]), "--alpha", "0.2", "--alpha", "0.05", "--method", method,
            "--n-iter", str(n_iter), "--mu", "3"]
    assert main(argv) == 0
    codes = np.load(out, allow_pickle=False)
    expected = lsalsa.solve(Y, [A1, A2], [0.2, 0.05], method=method, n_iter=n_iter,
                            mu=3.0).codes
    assert codes.shape == (4, N1 + N2) and codes.dtype == np.float64
    # The same solver on the same values, but from other buffers (a BLAS may round by
    # alignment): within the rounding of the iterations, or for exact codes within what
    # their gaps allow of the minimiser (tests/_numerics.py).
    if method == "exact":
        sharp = lsalsa.solve(Y, [A1, A2], [0.2, 0.05], method="exact", tol=1e-13).codes
        bound = sum(code_error_bound(Y, c, sharp, [A1, A2], [0.2, 0.05])
                    for c in (codes, expected))
        assert np.all(np.linalg.norm(codes - expected, axis=1) <= bound)
    else:
        bound = 2 * iteration_error(method, Y, [A1, A2], [0.2, 0.05], 30, mu=3.0)
        assert np.all(np.abs(codes - expected) <= bound)
    assert "wrote" in capsys.readouterr().out
    assert not [name for name in files_in(folder) if name.endswith(".tmp")]


def test_solve_in_bfloat16_is_the_librarys_low_precision_path(files, capsys):
    folder, paths, (Y, A1, _) = files
    out = folder / "codes-bf16.npy"
    argv = ["solve", str(paths["Y"]), str(out), "--dict", str(paths["A1"]), "--alpha", "0.1",
            "--method", "salsa", "--n-iter", "7", "--mu", "3", "--dtype", "bfloat16"]
    assert main(argv) == 0
    codes = np.load(out)
    assert codes.dtype == np.float64
    assert np.array_equal(codes, lsalsa.solve(Y, A1, 0.1, method="salsa", n_iter=7, mu=3.0,
                                              dtype="bfloat16").codes)
    assert "products in bfloat16" in capsys.readouterr().out
    # A precision this machine cannot run, or the exact solver: one line, exit 2, no file.
    for bad in (["--dtype", "float16"], ["--dtype", "bfloat16", "--method", "exact"]):
        refused = folder / "refused.npy"
        assert main(["solve", str(paths["Y"]), str(refused), "--dict", str(paths["A1"]),
                     "--alpha", "0.1", *bad]) == 2
        assert not refused.exists()
        assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_solve_float32_and_tol(files):
    folder, paths, (Y, A1, _) = files
    out = folder / "codes32.npy"
    argv = ["solve", str(paths["Y"]), str(out), "--dict", str(paths["A1"]), "--alpha", "0.1",
            "--method", "salsa", "--n-iter", "5000", "--tol", "1e-5", "--float32"]
    assert main(argv) == 0
    codes = np.load(out)
    assert codes.dtype == np.float32
    codes = codes.astype(np.float64)
    gap = lsalsa.duality_gap(Y, codes, A1, 0.1)
    cost = lsalsa.objective(Y, codes, A1, 0.1)
    # The solver stopped on a float32 relative gap of 1e-5, itself within float32 rounding
    # of a gap (relative to E + ||y||^2 / 2); the float64 gap here may exceed it by that
    # rounding and by the rounding of the float32 problem, which gap_rounding also bounds.
    assert np.all(gap <= 1e-5 * cost + 2 * gap_rounding(Y, codes, A1, cost, np.float32))


BAD = {
    "nan in signals": (["{nan}", "--dict", "{A1}", "--alpha", "0.1"], "NaN or Inf"),
    "shape mismatch": (["{short}", "--dict", "{A1}", "--alpha", "0.1"], "features"),
    "rows differ": (["{Y}", "--dict", "{A1}", "--dict", "{short}", "--alpha", "0.1"],
                    "same number of rows M"),
    "empty batch": (["{empty}", "--dict", "{A1}", "--alpha", "0.1"], "empty batch"),
    "1-D signals": (["{vector}", "--dict", "{A1}", "--alpha", "0.1"], "2-D"),
    "negative alpha": (["{Y}", "--dict", "{A1}", "--alpha", "-0.5"], "alpha must be >= 0"),
    "nan alpha": (["{Y}", "--dict", "{A1}", "--alpha", "nan"], "alpha must be finite"),
    "alpha count": (["{Y}", "--dict", "{A1}", "--dict", "{A2}", "--alpha", "0.1", "--alpha",
                     "0.2", "--alpha", "0.3"], "3 alphas for 2 dictionaries"),
    "missing file": (["{folder}/absent.npy", "--dict", "{A1}", "--alpha", "0.1"],
                     "not found"),
    "pickled file": (["{pickled}", "--dict", "{A1}", "--alpha", "0.1"], "not a plain .npy"),
    "junk file": (["{junk}", "--dict", "{A1}", "--alpha", "0.1"],
                  "junk.npy is not a .npy file (no NumPy header)"),
    "0-D signals": (["{scalar}", "--dict", "{A1}", "--alpha", "0.1"], "got shape ()"),
    # Before: NaN codes, or all-zero codes with a NaN gap, written with exit 0.
    "float32 overflow": (["{huge32}", "--dict", "{A1}", "--alpha", "0.1", "--float32"],
                         "too large for float32"),
    "beyond float32": (["{big}", "--dict", "{A1}", "--alpha", "0.1", "--float32"],
                       "beyond the float32 range"),
    "exact overflow": (["{big}", "--dict", "{A1}", "--alpha", "0.1", "--method", "exact"],
                       "too large for float64"),
    "zero dictionary ista": (["{Y}", "--dict", "{zeros}", "--alpha", "0.1", "--method",
                              "ista"], "all zeros"),
    "zero dictionary fista": (["{Y}", "--dict", "{zeros}", "--alpha", "0.1"], "all zeros"),
    "complex signals": (["{complex}", "--dict", "{A1}", "--alpha", "0.1"], "real numbers"),
    "text signals": (["{text}", "--dict", "{A1}", "--alpha", "0.1"], "real numbers"),
    "nan dictionary": (["{Y}", "--dict", "{nan}", "--alpha", "0.1"], "dictionary"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_exits_nonzero_with_one_line_and_no_file(files, capsys, case):
    folder, paths, _ = files
    args, expected = BAD[case]
    names = {k: str(v) for k, v in paths.items()} | {"folder": str(folder)}
    before = files_in(folder)
    argv = ["solve", args[0].format(**names), str(folder / "out.npy")]
    argv += [a.format(**names) for a in args[1:]]
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lsalsa: error: ")
    assert expected in err
    assert files_in(folder) == before  # no output, no temporary left behind


def test_output_folder_must_exist(files, capsys):
    folder, paths, _ = files
    argv = ["solve", str(paths["Y"]), str(folder / "absent" / "out.npy"), "--dict",
            str(paths["A1"]), "--alpha", "0.1"]
    assert main(argv) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (folder / "absent").exists()


@pytest.mark.parametrize("extra,reason", [
    (["--method", "lars"], "argument --method: invalid choice: 'lars'"),
    (["--mu", "ten"], "argument --mu: expected a positive number, got 'ten'"),
    (["--mu", "0"], "argument --mu: expected a positive number, got 0.0"),
    (["--n-iter", "0"], "argument --n-iter: expected an integer >= 1 or 'none', got 0"),
    (["--tol", "-1"], "argument --tol: expected a number >= 0 or 'none', got -1.0"),
    ([], "the following arguments are required: --alpha")])
def test_argument_errors_exit_2_in_one_line(files, capsys, extra, reason):
    """A value a solver option refuses (SolveSettings) is a usage error as the flag is read:
    one line, exit 2, nothing written."""
    folder, paths, _ = files
    argv = ["solve", str(paths["Y"]), str(folder / "out.npy"), "--dict", str(paths["A1"])]
    argv += extra if extra else []  # no --alpha at all when extra is empty
    argv += ["--alpha", "0.1"] if extra else []
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lsalsa solve: error: ") and reason in err
    assert not (folder / "out.npy").exists()


@pytest.mark.parametrize("alias", ["same name", "symlink", "hard link"])
@pytest.mark.parametrize("victim", ["Y", "A1"])
def test_output_that_is_an_input_is_refused(files, capsys, alias, victim):
    folder, paths, _ = files
    target = paths[victim]
    out = alias_of(target, alias, folder / "alias.npy")
    before = target.read_bytes()
    argv = ["solve", str(paths["Y"]), str(out), "--dict", str(paths["A1"]), "--alpha", "0.1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is the input file" in err
    assert target.read_bytes() == before

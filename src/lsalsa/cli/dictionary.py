"""``lsalsa dictionary``: learn a dictionary on a prepared data set, and draw its atoms."""

from __future__ import annotations

from pathlib import Path

from .. import checks
from ..core._arrays import resolve_device
from ..core.dictionary_settings import DictionarySettings
from ..errors import InputError
from ..io import check_output_path, read_array, read_json_object, remove_stale_temporaries
from ..workflow.data.prepared import TrainingSignalsSettings
from ..workflow.report.atoms import AtomsSettings
from .options import add_option_flags, option_names

# The options of learn_dictionary that lsalsa dictionary learn takes as flags: every one
# DictionarySettings declares (type, default and help).
DICTIONARY_OPTIONS = option_names(DictionarySettings)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "dictionary", help="learn a dictionary (paper Eq. 5 / Eq. 8) and draw its atoms",
        description="Dictionary learning by mini-batch SGD with FISTA codes and unit-norm "
                    "columns, and a picture of the atoms.")
    sub = parser.add_subparsers(dest="dictionary_command", metavar="ACTION", required=True)

    learn = sub.add_parser(
        "learn", help="learn a dictionary on the training signals of a prepared data set",
        description="Learn a dictionary (M, ATOMS) on the train split of a prepared data set "
                    "and write it to OUT (.npy) with a JSON sidecar (settings, objective "
                    "history, provenance). For an MCA data set give --component: one "
                    "dictionary per clean component (paper Eq. 8).")
    learn.add_argument("--data", required=True, metavar="PREPARED",
                       help="prepared data set: a folder or a name under --root")
    learn.add_argument("--root", default=None, metavar="DIR",
                       help="folder of prepared data sets (default <cache>/prepared)")
    add_option_flags(learn, TrainingSignalsSettings, ("component", "max_signals"))
    add_option_flags(learn, DictionarySettings, DICTIONARY_OPTIONS, flags={"n_atoms": "--atoms"},
                     required=("alpha",))
    learn.add_argument("--checkpoint-dir", default=None, metavar="DIR",
                       help="write a checkpoint after every epoch; resume from it when present")
    learn.add_argument("--device", default=None, help="torch device (default cpu)")
    learn.add_argument("--quiet", action="store_true", help="no progress bar")
    learn.add_argument("--out", required=True, help="output .npy for the dictionary (M, ATOMS)")
    learn.set_defaults(func=run_learn)

    show = sub.add_parser("show", help="draw the atoms of a dictionary as a PNG grid",
                          description="Draw every atom (column) of a dictionary .npy as an "
                                      "image in a grid; without --patch-shape, each atom "
                                      "has the shape its sidecar JSON records, else square.")
    show.add_argument("dictionary", help="dictionary .npy (M, N)")
    show.add_argument("--out", required=True, help="output .png")
    add_option_flags(show, AtomsSettings, ("patch_shape", "title"))
    show.set_defaults(func=run_show)


def training_signals(args, max_signals: int | None = None):
    """The prepared data set of ``--data`` and its training signals chosen by the flags."""
    from ..workflow.data import load_prepared

    data = load_prepared(args.data, root=args.root)
    key, signals = data.training_signals(args.component, max_signals, args.seed)
    return data, key, signals


def run_learn(args) -> int:
    from ..workflow.dictionaries import learn_with_checkpoints, save_dictionary
    from ..workflow.progress import Progress

    if Path(args.out).suffix != ".npy":
        raise InputError(f"output {args.out} must end in .npy")
    data, key, signals = training_signals(args, args.max_signals)
    # Neither the dictionary nor its sidecar may replace a file of the data set (meta.json,
    # the signals) or of the checkpoint it resumes from.
    inputs = [*data.path.iterdir()]
    if args.checkpoint_dir is not None and Path(args.checkpoint_dir).is_dir():
        inputs += Path(args.checkpoint_dir).iterdir()
    out = check_output_path(args.out, inputs)
    check_output_path(out.with_suffix(".json"), inputs)
    remove_stale_temporaries(out.parent)  # what killed runs left behind
    result = learn_with_checkpoints(
        signals, **{name: getattr(args, name) for name in DICTIONARY_OPTIONS},
        checkpoint_dir=args.checkpoint_dir,
        progress=Progress("lsalsa dictionary", quiet=args.quiet),
        device=None if args.device is None else resolve_device(args.device))
    sidecar = save_dictionary(out, result, extra={
        "data": {"path": str(data.path), "name": data.name, "key": key, "split": "train",
                 "stand_in": data.meta.get("stand_in"), "label": data.meta.get("label"),
                 "max_signals": args.max_signals},
        "patch_shape": data.meta.get("patch_shape")})
    state = "converged" if result.converged else "stopped at --epochs"
    print(f"wrote {out} ({result.dictionary.shape[0]} x {result.dictionary.shape[1]}, "
          f"{result.epochs} epochs, {state}, objective {result.history[-1]:.6g}) and {sidecar}")
    return 0


def _patch_shape(shape: tuple[int, int] | None, dictionary_path: Path):
    """``--patch-shape`` as given, else the dictionary's sidecar's, else None (square)."""
    if shape is not None:
        return shape
    sidecar = dictionary_path.with_suffix(".json")
    if not sidecar.is_file():
        return None
    # save_dictionary writes an object whose patch_shape is [rows, cols] or null; anything
    # else is a damaged or foreign file, refused rather than guessed around.
    try:
        meta = read_json_object(sidecar, "a dictionary sidecar")
    except InputError as exc:
        raise InputError(f"{exc}; give --patch-shape HxW") from exc
    shape = meta.get("patch_shape")
    if shape is None:
        return None
    if not isinstance(shape, list) or checks.fault(checks.image_shape, shape, "patch_shape"):
        raise InputError(f"the sidecar {sidecar} has patch_shape {shape!r}, not two integers "
                         ">= 1; give --patch-shape HxW")
    return tuple(shape)


def run_show(args) -> int:
    from ..workflow.report.atoms import plot_atoms

    # The sidecar is read too (for the patch shape).
    out = check_output_path(args.out, [args.dictionary, Path(args.dictionary).with_suffix(".json")])
    remove_stale_temporaries(out.parent)  # what killed runs left behind
    A = read_array(args.dictionary, "dictionary")
    shape = _patch_shape(args.patch_shape, Path(args.dictionary))
    plot_atoms(A, out, shape, title=args.title)
    print(f"wrote {out} ({A.shape[1]} atoms)")
    return 0

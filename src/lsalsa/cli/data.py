"""``lsalsa data``: list the data sets available here and prepare them."""

from __future__ import annotations

import sys
import warnings

from ..workflow.data import available, prepare
from ..workflow.data.catalog import PrepareSettings
from ..workflow.data.prepared import SPLITS, PreparedDataset
from .options import add_option_flags, option_names


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data", help="list and prepare the real data sets (patches, MCA mixtures)",
        description="Real data of the paper and its offline stand-ins (docs/DESIGN.md section 5).")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    lister = sub.add_parser("list", help="what can be prepared here, and from where",
                            description="List every named data set with its status: prepared, "
                                        "ready (sources found), download (canonical files can "
                                        "be fetched) or missing, and the source it would use.")
    _common(lister)
    lister.set_defaults(func=run_list)

    prep = sub.add_parser("prepare", help="cut patches / mixtures and store them as .npy",
                          description="Prepare the data set NAME (see `lsalsa data list`) under "
                                      "ROOT/NAME: .npy arrays per split and meta.json.")
    prep.add_argument("name", metavar="NAME", help="data set name, e.g. fashion-mnist-10")
    _common(prep)
    add_option_flags(prep, PrepareSettings, option_names(PrepareSettings))
    prep.add_argument("--download", action="store_true",
                      help="fetch canonical files (SHA-256 verified) when not found locally")
    prep.add_argument("--quiet", action="store_true", help="no progress bar")
    prep.set_defaults(func=run_prepare)


def _common(parser) -> None:
    parser.add_argument("--root", default=None, metavar="DIR",
                        help="folder of prepared data sets (default <cache>/prepared)")
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help="folder with raw canonical files (default $LSALSA_DATA, the cache)")


def run_list(args) -> int:
    rows = available(root=args.root, data_dir=args.data_dir)
    width = max(len(r["name"]) for r in rows)
    print(f"{'NAME':<{width}}  KIND  {'STATUS':<8}  SOURCE")
    for r in rows:
        where = r["source"]
        if r["prepared"]:
            counts = r["counts"] if isinstance(r["counts"], dict) else {}
            sizes = ", ".join(f"{s} {counts[s]}" for s in SPLITS if s in counts)
            where += f" [prepared: {r['prepared']}" + (f"; {sizes}]" if sizes else "]")
        print(f"{r['name']:<{width}}  {r['kind']:<4}  {r['status']:<8}  {where}")
    return 0


def run_prepare(args) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        path = prepare(args.name, root=args.root, data_dir=args.data_dir, seed=args.seed,
                       limit_images=args.limit_images, progress=not args.quiet,
                       download=args.download, stride=args.stride)
    for warning in caught:  # e.g. unreadable photographs that were skipped: one line each
        print(f"lsalsa: warning: {' '.join(str(warning.message).split())}", file=sys.stderr)
    meta = PreparedDataset(path).meta
    counts = ", ".join(f"{k} {meta['counts'][k]} signals from {meta['images'][k]} images"
                       for k in SPLITS if k in meta["counts"])
    print(f"wrote {path} ({meta['kind']}, M={meta['M']}: {counts})")
    for key, info in meta.get("split_by_source", {}).items():
        per_split = ", ".join(f"{s} {info['images'][s]}" for s in SPLITS
                              if s in info["images"])
        print(f"  {key}: {per_split} images; {info['rule']}")
    if meta["stand_in"]:
        print(f"note: {meta['label']}", file=sys.stderr)
    return 0

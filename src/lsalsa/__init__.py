"""lsalsa: fast sparse coding and source separation with learned SALSA encoders.

Public contract (docs/DESIGN.md section 7): :func:`solve`, :func:`objective`, :func:`duality_gap`,
the learned encoders :class:`LISTA` and :class:`LSALSA` and :func:`load_encoder`; also
:func:`separate_image` (an image through an MCA encoder).

Layers, bottom up (docs/DESIGN.md section 8): :mod:`lsalsa.core` (numerics, loaded with the
package), :mod:`lsalsa.workflow` (files, configs, the experiment pipeline, reports),
:mod:`lsalsa.apps` (image separation, streaming encode, the scikit-learn estimator, the demo)
and :mod:`lsalsa.cli`. The layers above the core are imported on first use, so
``import lsalsa`` stays light.
"""

import importlib

from .core.encoders import LISTA, LSALSA, UnrolledEncoder, build_encoder, load_encoder
from .core.objective import duality_gap, kkt_violation, lipschitz_constant, objective
from .core.problem import Problem, make_problem
from .core.prox import soft_threshold
from .core.separation import separate_image
from .core.solvers import METHODS, SolveResult, solve
from .errors import InputError
from .version import __version__

__all__ = [
    "LISTA",
    "LSALSA",
    "METHODS",
    "InputError",
    "Problem",
    "SolveResult",
    "UnrolledEncoder",
    "__version__",
    "build_encoder",
    "duality_gap",
    "kkt_violation",
    "lipschitz_constant",
    "load_encoder",
    "make_problem",
    "objective",
    "separate_image",
    "soft_threshold",
    "solve",
]

#: Imported on first attribute access (PEP 562): ``lsalsa.core.training.train(...)`` works after a
#: plain ``import lsalsa`` without every ``import lsalsa`` paying for matplotlib or sklearn.
SUBMODULES = frozenset({"apps", "cli", "core", "workflow"})


def __getattr__(name: str):
    if name in SUBMODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module  # later lookups skip this function
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | SUBMODULES)

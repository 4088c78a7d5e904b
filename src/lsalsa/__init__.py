"""lsalsa: fast sparse coding and source separation with learned SALSA encoders.

Public contract (DESIGN.md section 5): :func:`solve`, :func:`objective`, :func:`duality_gap`,
the learned encoders :class:`LISTA` and :class:`LSALSA`, and :func:`load_encoder`.
"""

from .encoders import LISTA, LSALSA, UnrolledEncoder, build_encoder, load_encoder
from .errors import InputError
from .objective import duality_gap, kkt_violation, lipschitz_constant, objective
from .problem import Problem, make_problem
from .prox import soft_threshold
from .solvers import METHODS, SolveResult, solve
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
    "soft_threshold",
    "solve",
]

"""The numerical core: arrays in, typed results out.

Nothing here reads or writes files (the encoders' own ``save``/``load`` aside, which go through
:mod:`lsalsa.io`), draws a progress bar or a figure, or changes global state. Long loops take
an optional callback; the workflow layer (:mod:`lsalsa.workflow`) turns those calls into
checkpoints, progress bars and logs.

Layer order, bottom up (checked by ``tests/test_layers.py``)::

    _arrays, prox, patches, mixtures -> problem -> operators, objective -> solvers, encoders
        -> codes, dictionary, metrics, separation, theory -> training
"""

# Every core module, so ``import lsalsa`` reaches them all as attributes (``lsalsa.core.training``)
# without importing anything from the layers above.
from . import (
    codes,
    dictionary,
    encoders,
    metrics,
    mixtures,
    objective,
    operators,
    patches,
    problem,
    prox,
    separation,
    solvers,
    theory,
    training,
)

__all__ = ["codes", "dictionary", "encoders", "metrics", "mixtures", "objective", "operators",
           "patches", "problem", "prox", "separation", "solvers", "theory", "training"]

"""Applications on top of the core and the workflow layer: separating images
(:mod:`.separation`), streaming encode of large arrays (:mod:`.streaming`), the scikit-learn
estimator (:mod:`.estimators`) and the separation demo (:mod:`.demo`)."""

from . import demo, estimators, separation, streaming

__all__ = ["demo", "estimators", "separation", "streaming"]

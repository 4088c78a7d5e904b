"""Experiment configurations: JSON files with a base setting and per-scale overrides.

A configuration names a prepared data set (:mod:`lsalsa.workflow.data`), how to learn the
dictionaries, the optimal codes, the depths ``T`` and the search grid of Section 6 of the paper.
The shipped ones live in ``lsalsa/workflow/configs/*.json``; ``scales.small`` / ``scales.full``
hold overrides merged (recursively, leaf by leaf) over the base for ``--scale small|full``
(:mod:`.loading`).

A loaded configuration is an :class:`ExperimentConfig` (:mod:`.experiment`): frozen dataclasses,
one per section (:mod:`.sections`), each field declared once with its default and its
constraint (:mod:`lsalsa.checks`). What ties fields together (one value per component, the
largest depth, the methods a target reads) is a small named check. Values stay as the JSON
wrote them (``10`` stays 10, not 10.0), lists become tuples. The pipeline's steps and the demo
read its attributes (``config.search.lrs``); :meth:`ExperimentConfig.to_dict` gives the JSON
back, resolved: what a run directory records in ``config.json`` and ``results.json`` keeps
under ``"config"`` (:func:`load_config` gives it directly). The report reads that stored JSON,
never the config file.

The search grid gives alphas as *factors* of the optimal-code penalties ``alphas``: a factor is
one number (all components scaled alike) or one number per component (``[f1, f2]``: MCA's
separate alpha_1, alpha_2 search).
"""

from .experiment import (
    FILE_KEYS,
    SECTIONS,
    ExperimentConfig,
    alpha_grid,
    dense_depths,
    methods_in,
)
from .loading import load_config, load_experiment, merge, read_config, shipped
from .sections import (
    CLASSIC,
    DEFAULT_DEPTHS,
    LEARNED,
    METHODS,
    OPTIONAL,
    PSNR_BASELINES,
    SCALES,
    TARGET_KINDS,
    ClassificationSection,
    CodesSection,
    DictionarySection,
    EvaluationSection,
    PrepareSection,
    SearchSection,
    Target,
)

__all__ = [
    "CLASSIC", "DEFAULT_DEPTHS", "FILE_KEYS", "LEARNED", "METHODS", "OPTIONAL", "PSNR_BASELINES",
    "SCALES", "SECTIONS", "TARGET_KINDS", "ClassificationSection", "CodesSection",
    "DictionarySection", "EvaluationSection", "ExperimentConfig", "PrepareSection",
    "SearchSection", "Target", "alpha_grid", "dense_depths",
    "load_config", "load_experiment", "merge", "methods_in", "read_config", "shipped",
]

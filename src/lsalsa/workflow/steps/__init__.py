"""The steps of an experiment, one module each, run in order by :mod:`lsalsa.workflow.pipeline`.

Each step module has ``run(run) -> dict``: it writes its outputs into the run directory
(:class:`.context.Run`) and returns what its marker ``steps/<step>.json`` records::

    data          the prepared data set (lsalsa.workflow.data.prepare)   -> data/<dataset>/
    dictionaries  one dictionary per component             -> dictionaries/, figures/atoms_*.png
    codes         exact optimal codes of every split                      -> codes/
    classic       FISTA / SALSA per T on validation, their test curves, the settings the
                  learned encoders start from, MCA's PSNR baselines       -> classic.json
    search        the learning rates of the learned methods (when more than one) -> search/
    train         every learned method per T                             -> models/
    evaluate      every method on the test split                -> eval/*.npy, results.json
    analysis      Theorem 1 and the curvature of each LSALSA       -> analysis/lsalsa_T<T>/
    report        figures, tables, report.md / report.html from the stored results

:mod:`.context` holds what the steps share (the run directory, config, progress sink,
device and loaders); :mod:`.classifiers` the expert classifiers the evaluate step scores.
A step reads the config in one place (the top of its ``run``, or a named helper such as
:func:`.train.train_options`) and hands plain values to the functions that do the work.
"""

#: The steps in the order they run (each later one reads what the earlier ones stored).
STEPS = ("data", "dictionaries", "codes", "classic", "search", "train", "evaluate", "analysis",
         "report")

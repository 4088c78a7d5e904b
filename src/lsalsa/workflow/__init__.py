"""The workflow layer: everything that touches files, progress output and configs.

- :mod:`.data`: offline sources, downloads and prepared data sets;
- :mod:`.config`: the experiments' configs;
- :mod:`.pipeline`: one experiment end to end in a resumable run directory
  (``lsalsa experiment run``);
- :mod:`.report`: figures, tables and documents drawn from stored results only
  (``lsalsa report``).

Subpackages are imported on use, so importing one step does not import them all.
"""

"""Reports drawn from stored results only: the atom figures (:mod:`.atoms`), the experiment's
figures (:mod:`.figures`), tables and documents (:mod:`.document`, written as CSV, Markdown and
HTML by :mod:`.render`), and the analysis figures and Markdown (:mod:`.theory`)."""

from . import atoms, document, figures, render, theory

__all__ = ["atoms", "document", "figures", "render", "theory"]

"""One sink for progress bars and log lines.

Every command and step reports through a :class:`Progress`: log lines go to stderr as
``[name] message`` unless the run is quiet; bars are drawn on stderr only when it is a terminal
and the run is not quiet, so logs, pipes and CI output never fill with carriage returns.

The numerical core never draws: its long loops take a ``callback(done, total)``, and
:meth:`Progress.callback` turns one into a bar.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager


class Progress:
    """Where a run's progress goes. ``Progress(quiet=True)`` says nothing at all."""

    def __init__(self, name: str = "lsalsa", *, quiet: bool = False, stream=None):
        self.name = name
        self.quiet = quiet
        self._stream = stream

    @property
    def stream(self):
        # Looked up on use, so pytest's capture and redirections made later still apply.
        return self._stream if self._stream is not None else sys.stderr

    @property
    def bars(self) -> bool:
        """Whether bars are drawn: not quiet, and stderr is a terminal."""
        isatty = getattr(self.stream, "isatty", None)
        return not self.quiet and bool(isatty and isatty())

    def log(self, message: str) -> None:
        if not self.quiet:
            print(f"[{self.name}] {message}", file=self.stream, flush=True)

    def bar(self, total: int | None = None, desc: str = "", unit: str = "it", *,
            initial: int = 0, **options):
        """A ``tqdm`` bar, disabled unless :attr:`bars`; close it (or use ``with``)."""
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, initial=initial, leave=False,
                    dynamic_ncols=True, file=self.stream, disable=not self.bars, **options)

    def iterate(self, iterable: Iterable, desc: str = "", unit: str = "it",
                total: int | None = None) -> Iterator:
        with self.bar(total if total is not None else _length(iterable), desc, unit) as bar:
            for item in iterable:
                yield item
                bar.update(1)

    @contextmanager
    def callback(self, desc: str, unit: str = "it") -> Iterator[Callable[[int, int], None]]:
        """A ``callback(done, total)`` for the core's loops, drawing one bar."""
        with self.bar(None, desc, unit) as bar:
            yield follow(bar)


def follow(bar) -> Callable[[int, int], None]:
    """A ``callback(done, total)`` that moves ``bar`` (for a caller that also sets the bar's
    postfix, and so holds the bar itself)."""
    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    return update


def as_progress(progress: bool | Progress) -> Progress:
    """The sink a workflow function reports to: its ``progress`` argument is a
    :class:`Progress`, or whether to draw bars at all (on a terminal)."""
    return progress if isinstance(progress, Progress) else Progress(quiet=not progress)


def _length(iterable) -> int | None:
    try:
        return len(iterable)
    except TypeError:
        return None

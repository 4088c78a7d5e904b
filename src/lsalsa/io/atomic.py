"""Atomic writes, and a clean-up of what killed runs left behind.

Every output is written to a temporary file (or staged in a temporary folder) beside its target
and renamed over it at the end: a crash, a full disk or a bad input never leaves a half-written
output behind. Temporaries are named ``.<target>.lsalsa-<random>.tmp``, created with the
permissions a plain ``open`` would give, and hold an exclusive advisory lock (``flock``) while
they are in use. The kernel drops the lock when its process dies, even by SIGKILL, so
:func:`remove_stale_temporaries` can tell debris from a file that a live process is writing
(an age threshold cannot: a slow write looks stale, a fresh crash does not) and removes only
debris. Where ``flock`` does not exist or the file system does not support it, nothing is
removed.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import InputError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, so stale temporaries are never swept
    fcntl = None

# The project's temporaries, and only them: ``.<target>.lsalsa-<12 hex digits>.tmp``.
TEMPORARY = re.compile(r"\.(?P<target>.+)\.lsalsa-[0-9a-f]{12}\.tmp")


# This process's temporaries not closed yet, removed when it exits: an exception such as the
# CLI's SIGTERM can strike between creating one and guarding it with ``try``/``with``.
_OPEN: dict[Path, int] = {}


@atexit.register
def _remove_open_temporaries() -> None:
    for path, pid in list(_OPEN.items()):
        if pid == os.getpid():  # not those of a parent that forked us
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _lock(fd: int, wait: bool) -> bool | None:
    """Take an exclusive flock on ``fd``: True, False when another holder has it (only when
    not waiting), None when locks are unavailable here."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    except OSError:  # e.g. a file system without locks
        return None
    return True


def _is_at(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (not removed or replaced)."""
    try:
        here = os.lstat(path)
    except FileNotFoundError:
        return False
    there = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


class Temporary:
    """A new hidden file or folder ``<parent>/.<name>.lsalsa-<random>.tmp``, locked until
    :meth:`close` (or the end of a ``with`` block), which removes it unless it was renamed
    away. Stale temporaries of the same ``name`` in ``parent`` are removed first."""

    def __init__(self, parent: str | os.PathLike, name: str, directory: bool = False):
        parent = Path(parent)
        remove_stale_temporaries(parent, name)
        self.directory = directory
        while True:
            self.path = parent / f".{name}.lsalsa-{secrets.token_hex(6)}.tmp"
            self.fd = None
            _OPEN[self.path] = os.getpid()  # before it exists: no moment unaccounted for
            try:
                if directory:
                    os.mkdir(self.path, 0o777)  # the umask applies, as for any new folder
                    if fcntl is not None:
                        self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
                else:
                    self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:  # another's: not ours to remove
                del _OPEN[self.path]
                continue
            except FileNotFoundError:
                del _OPEN[self.path]
                if directory and parent.is_dir():  # swept between mkdir and open: again
                    continue
                raise
            except BaseException:
                self.close()
                raise
            try:
                locked = self.fd is not None and _lock(self.fd, wait=True)
                if not locked or _is_at(self.path, self.fd):
                    return
            except BaseException:
                self.close()
                raise
            # A sweep removed it between its creation and our lock: take a fresh name.
            os.close(self.fd)
            del _OPEN[self.path]

    def close(self) -> None:
        """Remove the temporary (if it is still there) and release its lock."""
        try:
            if self.directory:
                shutil.rmtree(self.path, ignore_errors=True)
            else:
                self.path.unlink(missing_ok=True)
        finally:
            _OPEN.pop(self.path, None)
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None

    def __enter__(self) -> Temporary:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def remove_stale_temporaries(folder: str | os.PathLike, name: str | None = None) -> int:
    """Remove the temporaries that dead lsalsa processes left in ``folder`` (of target
    ``name`` only, if given); returns how many. A temporary whose lock is held (a live
    process is writing it) and anything not named like the project's temporaries stay."""
    if fcntl is None:
        return 0
    try:
        entries = list(os.scandir(folder))
    except OSError:  # a folder that does not exist (yet) holds no debris
        return 0
    removed = 0
    for entry in entries:
        match = TEMPORARY.fullmatch(entry.name)
        if match is None or (name is not None and match["target"] != name):
            continue
        path = Path(entry.path)
        try:  # never through a link; O_NONBLOCK: a FIFO of that name does not block us
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            mode = os.fstat(fd).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)) \
                    or _lock(fd, wait=False) is not True or not _is_at(path, fd):
                continue
            # Removed while locked: a writer that locks it after us sees it gone (_is_at).
            if stat.S_ISDIR(mode):
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed += not path.exists()
        finally:
            os.close(fd)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it to ``path`` on success.

    Write into the yielded path by name (``open``, ``savefig``, ...): a writer that replaces
    the file instead (renames its own file over it) would drop the lock."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with Temporary(target.parent, target.name) as tmp:
        yield tmp.path
        with open(tmp.path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp.path, target)


def replace_folder(staged: Path, final: Path) -> None:
    """Rename the folder ``staged`` to ``final``. An existing ``final`` first moves into a
    temporary of its own and is removed: a run killed in between leaves only debris that the
    next run sweeps, never a mix of old and new files."""
    with Temporary(final.parent, final.name, directory=True) as old:
        if final.exists():
            os.replace(final, old.path / final.name)
        os.replace(staged, final)


@contextlib.contextmanager
def staging_folder(parent: str | os.PathLike, name: str) -> Iterator[Path]:
    """A new hidden folder in ``parent`` to build outputs in, removed with what is left in
    it at the end (move what you keep out of it, or rename it, first)."""
    with Temporary(parent, name, directory=True) as tmp:
        yield tmp.path


def check_output_path(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (),
                      folder: bool = False) -> Path:
    """The output path, refused when its folder is missing or when writing it would destroy
    one of ``inputs``: it is that input under any name (a link or a hard link to an input is
    the same file) or, for an output ``folder`` (replaced as a whole), a folder above it. A
    file output that is a folder is refused too."""
    out = Path(path)
    if not folder and out.is_dir():
        raise InputError(f"output {path} is a directory")
    if not out.parent.exists():
        raise InputError(f"output folder {out.parent} does not exist")
    if out.exists():
        for source in inputs:
            if not Path(source).exists():
                continue
            if os.path.samefile(out, source):
                kind = "folder" if Path(source).is_dir() else "file"
                raise InputError(f"output {path} is the input {kind} {source}; writing it would "
                                 "destroy the input, choose another output")
            # resolve(): the folders that really hold the input, whatever name it was given by.
            # Only a folder can hold one (a file output that is a folder was refused above).
            if out.is_dir() and any(os.path.samefile(out, above)
                                    for above in Path(source).resolve().parents):
                raise InputError(f"output {path} holds the input {source}; replacing it would "
                                 "delete the input, choose another output")
    return out

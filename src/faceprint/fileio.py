"""Output files that never overwrite an input and are never left half-written.

:func:`check_outputs` is for front ends, before they open anything: it refuses an output
path that is an input (by resolved path or by identity, so symlinks and hard links count)
or another output, or that cannot be written (missing folder, a file where a folder should
be, no permission), each with a one-line message naming the paths.

:class:`AtomicPath` and :func:`atomic_write` write to a hidden temporary file beside the
final one and rename it into place (``os.replace``, atomic within a file system) only when
the writing succeeded: a crash, Ctrl-C or a full disk leaves the previous file, or none,
under the final name, never a truncated one.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from faceprint.errors import OutputError

StrPath = str | os.PathLike[str]

#: the output path that means standard output
STDOUT = "-"


def check_outputs(
    inputs: Iterable[StrPath],
    outputs: Mapping[str, StrPath | None],
    folders: Collection[str] = (),
) -> None:
    """Raise :class:`OutputError` unless every output can be written without touching an
    input or another output.

    ``outputs`` maps a label for the message (the option that named it, e.g. ``"--json"``)
    to a path; ``None`` and ``"-"`` (stdout) are skipped. Labels in ``folders`` are folders
    that will be created as needed (with their parents); the others are files.
    """
    named = [(label, Path(path)) for label, path in outputs.items() if path is not None and str(path) != STDOUT]
    sources = [Path(path) for path in inputs]
    for i, (label, path) in enumerate(named):
        for source in sources:
            if _same_file(path, source):
                raise OutputError(f"{label} {path}: {_same_how(path, source)} the input {source}; not overwriting it")
        for other_label, other in named[:i]:
            if _same_file(path, other):
                raise OutputError(
                    f"{label} {path}: {_same_how(path, other)} {other_label} {other}; each output needs its own path"
                )
    for label, path in named:
        if label in folders:
            _check_folder(label, path)
        else:
            _check_file(label, path)


def _same_file(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:  # another name for the same file: a hard link (or a case-insensitive file system)
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def _same_how(a: Path, b: Path) -> str:
    return "is" if os.path.realpath(a) == os.path.realpath(b) else "is a hard link to"


def _check_file(label: str, path: Path) -> None:
    what = f"{label} {path}"
    if path.is_dir():
        raise OutputError(f"{what}: is a folder, not a file")
    _check_parent(what, path.parent)
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{what}: the existing file is read-only")


def _check_folder(label: str, path: Path) -> None:
    what = f"{label} {path}"
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what}: is a file, not a folder")
    existing = path
    while not existing.exists() and existing != existing.parent:  # created with its parents later
        existing = existing.parent
    _check_parent(what, existing)


def _check_parent(what: str, folder: Path) -> None:
    """The folder an output goes into must exist, be a folder and be writable."""
    if not folder.exists():
        raise OutputError(f"{what}: folder {folder} does not exist")
    if not folder.is_dir():
        raise OutputError(f"{what}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{what}: folder {folder} is not writable")


class AtomicPath:
    """A new temporary file beside ``path`` that replaces ``path`` on :meth:`commit`.

    The temporary name is hidden and keeps ``path``'s suffix (``.a.mp4`` ->
    ``.a.<random>.part.mp4``), so writers that choose a format from the suffix still do.
    As a context manager it yields the temporary path, commits when the block succeeds and
    removes the file when it raises (Ctrl-C included). A symlink at ``path`` is written
    through, as ``open(path, "w")`` would; an existing file's permissions are kept.
    """

    def __init__(self, path: StrPath) -> None:
        self.path = Path(path)
        self.target = Path(os.path.realpath(path))
        self.tmp = _reserve(self.target, str(path))
        self.done = False

    def commit(self) -> None:
        """Flush the temporary file to disk and rename it to the final path."""
        if self.done:
            return
        try:
            fd = os.open(self.tmp, os.O_RDONLY)
            try:  # the data must be on disk before the rename is, or a crash could leave an empty file
                os.fsync(fd)
            finally:
                os.close(fd)
            if self.target.exists():
                os.chmod(self.tmp, stat.S_IMODE(self.target.stat().st_mode))
            os.replace(self.tmp, self.target)
        except OSError as exc:
            self.abort()
            raise OutputError(f"{self.path}: cannot write: {exc.strerror or exc}") from exc
        self.done = True

    def abort(self) -> None:
        """Remove the temporary file; the final path stays as it was."""
        if not self.done:
            self.tmp.unlink(missing_ok=True)
            self.done = True

    def __enter__(self) -> Path:
        return self.tmp

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def _reserve(target: Path, shown: str) -> Path:
    """Create an empty, new temporary file beside ``target`` (mode 0666 less the umask, as
    ``open`` would; ``tempfile.mkstemp`` makes it 0600)."""
    for _ in range(100):
        tmp = target.with_name(f".{target.stem}.{secrets.token_hex(4)}.part{target.suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(f"{shown}: cannot write: {exc.strerror or exc}") from exc
    raise OutputError(f"{shown}: cannot create a temporary file in {target.parent}")


@contextmanager
def atomic_write(path: StrPath, mode: str = "w", **open_args: Any) -> Iterator[IO[Any]]:
    """``open(path, mode)`` for writing, through :class:`AtomicPath`: the file appears under
    ``path``, complete, when the block ends without an exception. ``mode`` is ``"w"`` or
    ``"wb"`` (``open_args``: ``encoding``, ``newline``, ...)."""
    if mode not in ("w", "wb", "wt"):
        raise ValueError(f"atomic_write: mode must be 'w', 'wt' or 'wb', not {mode!r}")
    with AtomicPath(path) as tmp, open(tmp, mode, **open_args) as f:
        yield f

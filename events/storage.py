"""The file operations the logs, the snapshot store and the runner write through.

Every write that must survive a crash (a log record, an index entry, a snapshot, the settings
file) goes through one `Storage`, so that a test can put a faulty disk under all of them at once
(`tests/sim/faults.py`: torn and short writes, bit flips, ENOSPC, EROFS, a crash that drops what
was not synced). Reads use plain files: a fault is injected where data is written, and a reader
sees what the disk holds.

`OsStorage` is the real thing, a thin layer over `os`. The one in use is process-wide
(`current`, `install`); an object that writes takes it when it is made, so an object made before
a simulated crash keeps the dead one and cannot write after it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

__all__ = ["OsStorage", "Storage", "current", "fsync_path", "install", "pwrite_all", "write_all", "write_file"]


class Storage(Protocol):
    """What a writer needs of a disk; the signatures are those of `os`."""

    def open(self, path: Path, flags: int, mode: int = 0o644) -> int: ...
    def write(self, fd: int, data: bytes | memoryview) -> int: ...
    def pwrite(self, fd: int, data: bytes, offset: int) -> int: ...
    def fsync(self, fd: int) -> None: ...
    def truncate(self, fd: int, size: int) -> None: ...
    def close(self, fd: int) -> None: ...
    def replace(self, source: Path, target: Path) -> None: ...
    def unlink(self, path: Path) -> None: ...
    def mkdir(self, path: Path) -> None: ...


class OsStorage:
    """The real disk."""

    def open(self, path: Path, flags: int, mode: int = 0o644) -> int:
        return os.open(path, flags, mode)

    def write(self, fd: int, data: bytes | memoryview) -> int:
        return os.write(fd, data)

    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        return os.pwrite(fd, data, offset)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def truncate(self, fd: int, size: int) -> None:
        os.ftruncate(fd, size)

    def close(self, fd: int) -> None:
        os.close(fd)

    def replace(self, source: Path, target: Path) -> None:
        os.replace(source, target)

    def unlink(self, path: Path) -> None:
        os.unlink(path)

    def mkdir(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)


_current: Storage = OsStorage()


def current() -> Storage:
    """The storage writers made now will use."""
    return _current


def install(storage: Storage) -> Storage:
    """Makes `storage` the one new writers use; returns the one it replaces."""
    global _current
    previous, _current = _current, storage
    return previous


def write_all(io: Storage, fd: int, data: bytes | bytearray | memoryview) -> None:
    """Writes all of `data` (a write may take less than it is given)."""
    view = memoryview(data)
    while view:
        view = view[io.write(fd, view) :]


def pwrite_all(io: Storage, fd: int, data: bytes, offset: int) -> None:
    """Writes all of `data` at `offset` (a write may take less than it is given)."""
    while data:
        done = io.pwrite(fd, data, offset)
        data, offset = data[done:], offset + done


def fsync_path(io: Storage, path: Path) -> None:
    """Syncs a file or a folder (a folder's sync makes the names in it durable)."""
    fd = io.open(path, os.O_RDONLY)
    try:
        io.fsync(fd)
    finally:
        io.close(fd)


def write_file(io: Storage, path: Path, data: bytes, *, temp: Path | None = None) -> None:
    """Replaces `path` with `data` atomically: a temp file written, synced and renamed, then the
    folder synced; a crash leaves the old file or the new one. A failed write removes the temp."""
    temp = temp or path.with_name(path.name + ".tmp")
    io.mkdir(path.parent)
    fd = io.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        try:
            write_all(io, fd, data)
            io.fsync(fd)
        finally:
            io.close(fd)
        io.replace(temp, path)
    except BaseException:
        _discard(io, temp)
        raise
    fsync_path(io, path.parent)


def _discard(io: Storage, path: Path) -> None:
    """Removes a temp file after a failed write, if it can (the next write replaces it anyway)."""
    try:
        io.unlink(path)
    except OSError:
        pass

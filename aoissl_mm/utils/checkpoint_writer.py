"""The one way out for checkpoints: written to a temporary file, synced, then renamed.

A crash (power loss, OOM kill, ``SIGKILL``) while a checkpoint is being
written must never leave a half-written file under the final name, nor
damage the previous checkpoint. Every local checkpoint this package (and,
through :mod:`aoissl_mm.compat`, mmengine) writes goes through
:func:`atomic_torch_save`; small text files that point at checkpoints
(mmengine's ``last_checkpoint``) through :func:`atomic_write_text`:

1. write to ``.<name>.<pid>.<random>.tmp`` in the destination folder (same
   file system, so the rename below is atomic);
2. ``flush`` + ``os.fsync`` the file (the bytes are on disk before the name is);
3. ``os.replace`` it onto the final name (readers see the old file or the new
   one, never a mixture);
4. ``fsync`` the folder (the rename itself survives a power loss).

On an error the temporary file is removed; after a ``SIGKILL`` it stays
behind under its temporary name (``.<name>.*.tmp``), never under ``<name>``.
Like :mod:`aoissl_mm.utils.checkpoint`, this module imports no other part of
the package (:mod:`aoissl_mm.compat` imports it lazily).
"""
import contextlib
import os
import os.path as osp
import uuid
from typing import IO, Any, Iterator

import torch

__all__ = ['atomic_torch_save', 'atomic_write_text', 'atomic_open', 'fsync_dir',
           'temporary_name']


def temporary_name(path: str) -> str:
    """The temporary file next to ``path`` that an atomic write of ``path`` uses.

    ``<folder>/.<name>.<pid>.<8 hex>.tmp``: hidden, unique per writer and call.
    """
    folder, name = osp.split(osp.abspath(path))
    return osp.join(folder, f'.{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp')


def fsync_dir(folder: str) -> None:
    """``fsync`` a folder so that a rename inside it is durable (no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: folders cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str, mode: str = 'wb', **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file for writing; on success it replaces ``path`` atomically.

    The file is flushed and ``fsync``-ed before ``os.replace``, and the folder
    is ``fsync``-ed after it. On an exception the temporary file is removed
    and ``path`` is left as it was. Permissions follow the umask, as a plain
    ``open(path, 'w')`` would give a new file.

    Args:
        path (str): Final file name (its folder is created if needed).
        mode (str): ``'wb'`` or ``'w'``. Defaults to ``'wb'``.
        **kwargs: Passed on to :func:`open` (e.g. ``encoding``).

    Yields:
        IO: The open temporary file.
    """
    if mode not in ('w', 'wb'):
        raise ValueError(f"atomic_open writes whole files: mode must be 'w' or 'wb', got {mode!r}")
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = temporary_name(path)
    try:
        with open(tmp, mode.replace('w', 'x'), **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    fsync_dir(folder)


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save(obj, path)``, atomically (temporary file, fsync, ``os.replace``).

    Args:
        obj (Any): What to save (an mmengine checkpoint dict).
        path (str): Final file name.
    """
    with atomic_open(path, 'wb') as f:
        torch.save(obj, f)


def atomic_write_text(path: str, text: str) -> None:
    """Write a small text file (UTF-8) atomically, e.g. mmengine's ``last_checkpoint``."""
    with atomic_open(path, 'w', encoding='utf-8') as f:
        f.write(text)

"""The one way this package writes a file: to a temporary file, synced, then renamed.

A crash (power loss, OOM kill, ``SIGKILL``) while a file is written must never
leave a half-written file under the final name, nor damage the previous one.
Every single file the package writes for users (checkpoints,
``last_checkpoint``, images and masks, JSON/CSV reports, plots, manifests) goes
through :func:`atomic_path` or the helpers built on it. (Multi-file outputs —
a saved retrieval memory, the synthetic benchmark, an ONNX model with external
data — are written into a temporary folder that is renamed when complete; see
their modules.)

1. write to ``.<name>.<host>-<pid>.<8 hex>.tmp`` in the destination folder (same
   file system, so the rename below is atomic); :func:`atomic_path` appends
   the original extension (``.tmp.png``) so that encoders that pick the format
   from the name — cv2, faiss, numpy, matplotlib — still work;
2. ``os.fsync`` the file (its bytes are on disk before its name is; skipped
   with ``durable=False`` for files inside a temporary tree that is synced and
   renamed as a whole);
3. ``os.replace`` it onto the final name (readers see the old file or the new
   one, never a mixture);
4. ``fsync`` the folder (the rename itself survives a power loss).

On an exception the temporary file is removed; after a ``SIGKILL`` it stays
behind under its temporary name, never under ``<name>``, and
:func:`remove_stale_temporaries` deletes it later (the
``AtomicCheckpointHook`` calls it when a run starts), once no process of this
host with the writer's pid exists. This module imports no other part of the
package.
"""
import contextlib
import os
import os.path as osp
import re
import socket
import uuid
from typing import IO, Any, Iterator, List

__all__ = ['atomic_path', 'atomic_open', 'atomic_write_text', 'fsync_dir', 'fsync_file',
           'other_process_alive', 'this_host', 'temporary_name',
           'remove_stale_temporaries']

# .<name>.<host>-<pid>.<8 hex>.tmp<ext>
_TEMPORARY_RE = re.compile(
    r'^\.(?P<name>.+)\.(?P<host>[A-Za-z0-9_-]+)-(?P<pid>\d+)\.[0-9a-f]{8}\.tmp(\.[^.]*)?$')


def _host() -> str:
    """This machine's name as it appears in temporary names (no dots: the name is split there)."""
    return re.sub(r'[^A-Za-z0-9_]', '_', socket.gethostname())[:32] or 'host'


def temporary_name(path: str, keep_extension: bool = True) -> str:
    """The temporary file next to ``path`` that an atomic write of ``path`` uses.

    ``<folder>/.<name>.<host>-<pid>.<8 hex>.tmp<ext>``: hidden, unique per
    writer and call, ending in ``path``'s extension unless ``keep_extension`` is False
    (then in ``.tmp``, so that e.g. a half-written checkpoint never ends in
    ``.pth``).
    """
    folder, name = osp.split(osp.abspath(path))
    ext = osp.splitext(name)[1] if keep_extension else ''
    return osp.join(folder, f'.{name}.{_host()}-{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{ext}')


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


def fsync_file(path: str) -> None:
    """``fsync`` a file's bytes to disk (through a writable descriptor: Windows needs one)."""
    fd = os.open(path, os.O_RDWR)  # Windows refuses fsync on a read-only descriptor
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str, keep_extension: bool = True, durable: bool = True) -> Iterator[str]:
    """Yield a temporary path next to ``path``; it replaces ``path`` atomically on success.

    For writers that take a file name (``cv2.imwrite``, ``faiss.write_index``,
    ``np.save``, ``fig.savefig``). The file written there is ``fsync``-ed,
    renamed onto ``path`` and the folder ``fsync``-ed; on an exception it is
    removed and ``path`` is left as it was.

    Args:
        path (str): Final file name (its folder is created if needed).
        keep_extension (bool): End the temporary name in ``path``'s extension
            (for encoders that read it). Defaults to True.
        durable (bool): ``fsync`` the file and the folder. False for files
            inside a temporary tree that is made durable and renamed as a whole
            (thousands of small files). Defaults to True.

    Yields:
        str: The temporary file name to write.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = temporary_name(path, keep_extension)
    try:
        yield tmp
        if durable:
            fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    if durable:
        fsync_dir(folder)


@contextlib.contextmanager
def atomic_open(path: str, mode: str = 'wb', **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file for writing; on success it replaces ``path`` atomically.

    The temporary name ends in ``.tmp`` (:func:`temporary_name` without the
    extension). Permissions follow the umask, as a plain ``open(path, 'w')``
    would give a new file.

    Args:
        path (str): Final file name (its folder is created if needed).
        mode (str): ``'wb'`` or ``'w'``. Defaults to ``'wb'``.
        **kwargs: Passed on to :func:`open` (e.g. ``encoding``).

    Yields:
        IO: The open temporary file.
    """
    if mode not in ('w', 'wb'):
        raise ValueError(f"atomic_open writes whole files: mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path, keep_extension=False) as tmp:
        with open(tmp, mode.replace('w', 'x'), **kwargs) as f:
            yield f


def atomic_write_text(path: str, text: str) -> None:
    """Write a text file (UTF-8: JSON, CSV, ``last_checkpoint``) atomically."""
    with atomic_open(path, 'w', encoding='utf-8') as f:
        f.write(text)


def _pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (True where that cannot be told)."""
    if pid == os.getpid() or os.name == 'nt':  # on Windows os.kill would terminate it
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # someone else's process (PermissionError), or unknown
        return True
    return True


def this_host() -> str:
    """This machine's host name as written into temporary names and run records."""
    return _host()


def other_process_alive(host: str, pid: int) -> bool:
    """Whether ``pid`` on ``host`` is another live process of this machine.

    False for this process, for another host (it cannot be told from here) and
    for a pid that no longer exists; True where it cannot be ruled out (someone
    else's process, Windows).
    """
    return host == _host() and pid != os.getpid() and _pid_alive(pid)


def remove_stale_temporaries(folder: str) -> List[str]:
    """Delete the temporary files that killed writers left in ``folder``.

    Only names of the :func:`temporary_name` pattern written on this host whose
    writer process no longer exists are removed; a live writer's file, and
    every file written by another host (a shared work dir), is kept. Nothing is
    removed on Windows (no safe way to test a pid there). Sub-folders are not
    searched.

    Args:
        folder (str): The folder (e.g. a run's work dir). A missing one is fine.

    Returns:
        list[str]: The files removed.
    """
    removed = []
    if not osp.isdir(folder):
        return removed
    for name in sorted(os.listdir(folder)):
        m = _TEMPORARY_RE.match(name)
        if m is None or m.group('host') != _host() or _pid_alive(int(m.group('pid'))):
            continue
        path = osp.join(folder, name)
        if osp.isfile(path):
            with contextlib.suppress(OSError):
                os.remove(path)
                removed.append(path)
    return removed

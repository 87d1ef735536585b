"""Why a checkpoint cannot be read: one sentence from the file's own bytes.

:func:`aoissl_mm.utils.checkpoint.weights_only_load` calls
:func:`diagnose_unreadable` when ``torch.load`` fails for any reason other than
a global outside the allow-list, so that an empty file, a zip archive cut short
by a crash, a corrupt member, a plain pickle or an HTML page saved as ``.pth``
each get their own message instead of one generic error. Imports nothing from
the package.
"""
import os
import zipfile
from typing import IO, Optional, Union

__all__ = ['diagnose_unreadable', 'refusal_reason']

# the first bytes of a legacy (pre-1.6, non-zip) torch.save file: its pickled magic number
_LEGACY_TORCH_HEAD = b'\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19'


def _first_line(err: BaseException) -> str:
    """``'<type>: <torch's first sentence>'``, without its advice to disable weights_only."""
    text = str(err)
    if 'WeightsUnpickler error:' in text:  # torch's weights-only unpickler hit a bad opcode
        text = text.split('WeightsUnpickler error:', 1)[1]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    text = lines[0].split('. ', 1)[0] if lines else ''
    return f'{type(err).__name__}: {text}' if text else type(err).__name__


def refusal_reason(err: BaseException) -> str:
    """The line of torch's weights-only error that names the refused global.

    torch words it ``Unsupported global: GLOBAL m.f was not an allowed global``
    or ``Trying to load unsupported GLOBAL m.f whose module m is blocked``;
    its advice to disable ``weights_only`` is dropped.
    """
    for line in str(err).replace('\t', ' ').splitlines():
        if 'GLOBAL' in line:
            line = line.split('WeightsUnpickler error:', 1)[-1].split('. Please', 1)[0]
            return f'{type(err).__name__}: {line.strip()}'
    return _first_line(err)


def diagnose_unreadable(file: Union[str, IO[bytes]], err: BaseException) -> Optional[str]:
    """Say why ``torch.load`` could not read ``file``, from the file's own bytes.

    Args:
        file (str | IO[bytes]): The path or buffer that failed to load.
        err (BaseException): What :func:`torch.load` raised.

    Returns:
        str | None: One of: the file is empty; a truncated or corrupt zip
        archive (with its size, and the member failing its CRC check when
        there is one); a zip archive that is not a PyTorch checkpoint; a
        legacy checkpoint that ends early; a plain pickle (not written by
        ``torch.save``); not a checkpoint at all (with its first bytes, e.g.
        an HTML page or a git-LFS pointer). Each ends with the error torch
        raised. None when the file looks like an intact checkpoint (complete
        zip with ``data.pkl`` and good CRCs, or a legacy file not cut short)
        or cannot be inspected: then the error is torch's, not the file's.
    """
    cause = _first_line(err)
    try:
        if isinstance(file, str):
            size = os.path.getsize(file)
            with open(file, 'rb') as f:
                head = f.read(64)
        else:
            file.seek(0, os.SEEK_END)
            size = file.tell()
            file.seek(0)
            head = file.read(64)
            file.seek(0)
    except (OSError, AttributeError, ValueError):
        return None
    if size == 0:
        return f'the file is empty (0 bytes) ({cause})'
    if head.startswith(b'PK\x03\x04'):
        try:
            with zipfile.ZipFile(file) as archive:
                names = archive.namelist()
                bad = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError):
            return (f'the zip archive is truncated or corrupt ({size} bytes; no intact '
                    f'end-of-archive record: the file was cut short, e.g. by a crash while it '
                    f'was written or an incomplete copy) ({cause})')
        if bad is not None:
            return f'the zip archive is corrupt: member {bad!r} fails its CRC check ({cause})'
        if not any(n.endswith('/data.pkl') or n == 'data.pkl' for n in names):
            return (f'a zip archive, but not a PyTorch checkpoint (no data.pkl among '
                    f'{names[:5]}) ({cause})')
        return None
    if head.startswith(_LEGACY_TORCH_HEAD):
        if isinstance(err, EOFError):
            return f'the legacy-format checkpoint ends early (truncated, {size} bytes) ({cause})'
        return None
    if head[:1] == b'\x80':
        return ('a plain Python pickle, not a PyTorch checkpoint written by torch.save; it is '
                f'not unpickled, since that could run code ({cause})')
    return (f'not a PyTorch checkpoint: neither a zip archive nor a pickle; it starts with '
            f'{head[:32]!r} ({size} bytes) ({cause})')

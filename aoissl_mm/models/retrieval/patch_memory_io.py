"""Files of a saved :class:`~.patch_memory.PatchMemory`: atomic writing and checked loading.

Layout (``memory.json`` is written last, so a directory without it is not a
complete memory)::

    memory.json        {"format": "aoissl_mm.patch_memory", "format_version": 2,
                        "key_dim", "value_shape", "value_bytes", "count", "shard_size",
                        "index_type", "fp16_keys", "nlist", "nprobe", "pq_m",
                        "shards": [{"index", "values", "count",
                                    "index_sha256", "values_sha256"}, ...],
                        "metadata": {...}}
    index_XXXXX.faiss  one faiss index per shard
    values_XXXXX.npy   (count, value_bytes) uint8 per shard (np.save, no pickle)

Every data file's SHA-256 is recorded at save time and, by default, checked
(streamed in 16 MiB blocks) before the file is parsed, so a flipped byte is an
error naming the file rather than silently wrong keys or masks. Format 1
(saved before checksums existed) still loads, unverified, with a warning.
An empty memory (0 entries) is refused when saved and when loaded.
"""
import contextlib
import hashlib
import json
import os
import os.path as osp
import shutil
import tempfile
import warnings
from typing import Iterable, List, Optional, Tuple

import numpy as np

from ...utils.atomic_io import fsync_dir, fsync_file
from .bitpack import packed_size
from .index_base import SearchIndex

__all__ = [
    'MEMORY_FILE', 'FORMAT_NAME', 'FORMAT_VERSION', 'write_memory_dir', 'load_memory',
    'file_sha256', 'verify_memory_files'
]

MEMORY_FILE = 'memory.json'
FORMAT_NAME = 'aoissl_mm.patch_memory'
FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)  # 1: no checksums
_HASH_BLOCK = 1 << 24
_FIELDS = dict(key_dim=int, value_shape=list, value_bytes=int, count=int, index_type=str,
               fp16_keys=bool, nprobe=int, shards=list, metadata=dict)


def shard_files(i: int) -> Tuple[str, str]:
    """Index and values file names of shard ``i``."""
    return f'index_{i:05d}.faiss', f'values_{i:05d}.npy'


def file_sha256(path: str) -> str:
    """SHA-256 (hex) of a file, read in 16 MiB blocks (memories larger than RAM included)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(_HASH_BLOCK), b''):
            digest.update(block)
    return digest.hexdigest()


def _write_values(path: str, blocks: Iterable[np.ndarray], count: int, nbytes: int) -> None:
    out = np.lib.format.open_memmap(path, mode='w+', dtype=np.uint8, shape=(count, nbytes))
    pos = 0
    for block in blocks:
        out[pos:pos + block.shape[0]] = block
        pos += block.shape[0]
    if pos != count:
        raise RuntimeError(f'{path}: wrote {pos} values for {count} entries')
    out.flush()
    del out


def _replace_dir(tmp: str, directory: str) -> None:
    if not osp.lexists(directory):
        os.replace(tmp, directory)
        return
    if not osp.isdir(directory) or (os.listdir(directory) and
                                    not osp.isfile(osp.join(directory, MEMORY_FILE))):
        raise ValueError(f'{directory} exists and is not a saved memory (no {MEMORY_FILE}); '
                         'refusing to replace it')
    parent, name = osp.split(directory)
    old = tempfile.mkdtemp(prefix=f'.{name}.old-', dir=parent)
    os.replace(directory, old)  # onto the empty placeholder
    try:
        os.replace(tmp, directory)
    except BaseException:
        os.replace(old, directory)
        raise
    shutil.rmtree(old, ignore_errors=True)


def empty_memory_error(directory: str) -> ValueError:
    """The refusal to save a memory of 0 entries to ``directory``."""
    return ValueError(f'refusing to save an empty memory (0 entries) to {directory}: it could '
                      'not label anything; add labelled images first')


def write_memory_dir(directory: str, shards: List[Tuple[SearchIndex, Iterable[np.ndarray], int]],
                     info: dict, nbytes: int) -> None:
    """Write shards (index, packed-value blocks, count) and ``memory.json`` atomically.

    Each file's SHA-256 goes into its shard entry. An empty memory is refused
    (ValueError naming ``directory``): it could not label anything.
    """
    directory = osp.abspath(directory)
    if sum(int(count) for _, _, count in shards) == 0:
        raise empty_memory_error(directory)
    parent, name = osp.split(directory)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{name}.tmp-', dir=parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would stay on the saved memory
        entries = []
        for i, (index, blocks, count) in enumerate(shards):
            index_name, values_name = shard_files(i)
            index.write(osp.join(tmp, index_name))
            _write_values(osp.join(tmp, values_name), blocks, count, nbytes)
            entries.append(dict(index=index_name, values=values_name, count=int(count),
                                index_sha256=file_sha256(osp.join(tmp, index_name)),
                                values_sha256=file_sha256(osp.join(tmp, values_name))))
        doc = dict(format=FORMAT_NAME, format_version=FORMAT_VERSION, **info, shards=entries)
        with open(osp.join(tmp, MEMORY_FILE), 'w') as f:
            json.dump(doc, f, indent=2)
        for file in os.listdir(tmp):  # every byte on disk before the new name is
            fsync_file(osp.join(tmp, file))
        fsync_dir(tmp)
        _replace_dir(tmp, directory)
        fsync_dir(parent)  # the rename survives a power loss
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise


def _read_info(directory: str) -> dict:
    path = osp.join(directory, MEMORY_FILE)
    if not osp.isdir(directory):
        raise FileNotFoundError(f'memory directory not found: {directory}')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} not found: {directory} is not a saved memory '
                                '(or its save did not complete)')
    try:
        with open(path) as f:
            info = json.load(f)
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f'{path}: corrupted or truncated memory description ({err})') from err
    if not isinstance(info, dict) or info.get('format') != FORMAT_NAME:
        raise ValueError(f'{path}: not a {FORMAT_NAME} description')
    version = info.get('format_version')
    if isinstance(version, bool) or version not in _READABLE_VERSIONS:
        raise ValueError(f"{path}: format_version {info.get('format_version')!r} is not "
                         f'supported (this version reads {_READABLE_VERSIONS})')
    for key, kind in _FIELDS.items():
        if not isinstance(info.get(key), kind):
            raise ValueError(f'{path}: field {key!r} missing or not a {kind.__name__} '
                             f'(got {info.get(key)!r})')
    counts = [s.get('count') if isinstance(s, dict) else None for s in info['shards']]
    if any(not isinstance(c, int) for c in counts) or sum(counts) != info['count']:
        raise ValueError(f"{path}: shard counts {counts} do not add up to count={info['count']}")
    if info['count'] == 0:
        raise ValueError(f'memory {directory} is empty (0 entries): it cannot label anything; '
                         'rebuild it (tools/memory.py build) or add labelled images')
    shape = info['value_shape']
    if len(shape) != 2 or not all(isinstance(v, int) and v >= 1 for v in shape) or \
            packed_size(tuple(shape)) != info['value_bytes']:
        raise ValueError(f"{path}: value_shape {shape} does not give value_bytes="
                         f"{info['value_bytes']}")
    if info['format_version'] >= 2:
        for i, entry in enumerate(info['shards']):
            for key in ('index_sha256', 'values_sha256'):
                if not isinstance(entry.get(key), str) or len(entry[key]) != 64:
                    raise ValueError(f'{path}: shard {i} has no valid {key!r} (a format '
                                     f'{FORMAT_VERSION} memory records a SHA-256 per file)')
    for key in ('shard_size', 'nlist', 'pq_m'):
        info.setdefault(key, None)
    return info


def check_expected(directory: str, info: dict, expected: Optional[dict]) -> None:
    """Compare each key of ``expected`` with the saved metadata (or saved field)."""
    for key, want in (expected or {}).items():
        want = json.loads(json.dumps(want))
        if key in info['metadata']:
            saved = info['metadata'][key]
        elif key in info and key not in ('metadata', 'shards', 'format'):
            saved = info[key]
        else:
            raise ValueError(f'memory {directory} has no {key!r} in its metadata '
                             f'(expected {want!r})')
        if saved != want:
            raise ValueError(f'memory {directory}: {key!r} is {saved!r} in the saved memory but '
                             f'{want!r} is expected')


def _shard_paths(directory: str, entry: dict) -> Tuple[str, str]:
    index_path = osp.join(directory, str(entry.get('index')))
    values_path = osp.join(directory, str(entry.get('values')))
    if not osp.isfile(index_path):
        raise FileNotFoundError(f'search index file not found: {index_path}')
    if not osp.isfile(values_path):
        raise FileNotFoundError(f'values file not found: {values_path}')
    return index_path, values_path


def verify_memory_files(directory: str, info: Optional[dict] = None) -> bool:
    """Check every data file of a saved memory against the SHA-256 in ``memory.json``.

    Args:
        directory (str): The memory directory.
        info (dict, optional): Its parsed ``memory.json`` (read when None).

    Returns:
        bool: True when verified; False for a format-1 memory (no
        checksums recorded; a warning is logged).

    Raises:
        FileNotFoundError: A missing file (named).
        ValueError: A file whose digest differs (named, with both digests).
    """
    directory = osp.abspath(directory)
    info = _read_info(directory) if info is None else info
    if info['format_version'] < 2:
        warnings.warn(f'memory {directory} was saved without checksums (format_version '
                      f"{info['format_version']}): its files are not verified; saving it again "
                      'records them')
        return False
    for entry in info['shards']:
        for path, want in zip(_shard_paths(directory, entry),
                              (entry['index_sha256'], entry['values_sha256'])):
            got = file_sha256(path)
            if got != want:
                raise ValueError(f'{path}: corrupted or truncated file: its SHA-256 is {got}, '
                                 f'{MEMORY_FILE} recorded {want} ({osp.getsize(path)} bytes '
                                 'now); restore the memory or rebuild it')
    return True


def load_memory(directory: str, expected: Optional[dict], mmap: bool, device: str,
                backend: str, mmap_keys: bool = False, verify: bool = True
                ) -> Tuple[dict, List[Tuple[SearchIndex, np.ndarray]]]:
    """Read and check ``memory.json``, verify the files' SHA-256, read every shard.

    ``verify=False`` skips the digests (a memory much larger than the page
    cache loads without reading every byte); the structural checks (sizes,
    counts, types) always run.
    """
    from .search_index import read_search_index
    directory = osp.abspath(directory)
    info = _read_info(directory)
    check_expected(directory, info, expected)
    if verify:
        verify_memory_files(directory, info)
    shards = []
    for entry in info['shards']:
        count = entry['count']
        index_path, values_path = _shard_paths(directory, entry)
        index = read_search_index(index_path, device=device, backend=backend,
                                  nprobe=info['nprobe'], mmap=mmap_keys)
        if index.dim != info['key_dim'] or index.ntotal != count:
            raise ValueError(f'{index_path}: holds {index.ntotal} keys of dimension {index.dim}, '
                             f"but {MEMORY_FILE} says {count} of dimension {info['key_dim']}")
        if index.index_type != info['index_type'] or index.fp16 != info['fp16_keys']:
            raise ValueError(f'{index_path}: a {index.index_type} index (fp16={index.fp16}), '
                             f"but {MEMORY_FILE} says {info['index_type']} "
                             f"(fp16={info['fp16_keys']})")
        try:
            values = np.load(values_path, mmap_mode='r' if mmap else None, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise ValueError(f'{values_path}: cannot read the values (truncated or corrupted '
                             f'.npy file): {err}') from err
        if values.dtype != np.uint8 or values.shape != (count, info['value_bytes']):
            raise ValueError(f'{values_path}: values of shape {values.shape} {values.dtype}, '
                             f"expected ({count}, {info['value_bytes']}) uint8 (count of "
                             f'{index_path})')
        shards.append((index, values))
    return info, shards

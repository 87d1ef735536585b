"""Exact vs IVF search on a large retrieval memory (behind ``tools/benchmark.py``).

The memory holds the real (key, value) entries of a labelled split first,
then *distractors* up to the asked size: each a real key plus Gaussian noise
(norm ``noise`` on average), renormalised, with the value of the key it was
drawn from (``values_mode='copy'``) or an empty mask (``'empty'``). Entries
are added in one fixed order to every memory, so ids agree across indexes.

Recall@k of an approximate search against the exact one (both from
:meth:`PatchMemory.search`) is reported twice: ``recall`` counts a returned
neighbour as found when its id is among the exact top-k *or* its similarity
ties the exact k-th one within ``tol`` (identical or equally near keys, e.g.
black patches, may be returned in another order); ``id_recall`` counts ids
only.
"""
import copy
import math
import time
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..models.retrieval import PatchMemory

__all__ = [
    'distractor_stream', 'memory_from_stream', 'recall_at_k', 'time_search',
    'evaluate_retrieval', 'benchmark_search_scaling', 'benchmark_size_sweep', 'DEFAULT_NPROBES'
]

DEFAULT_NPROBES = (1, 2, 4, 8, 16, 32, 64)
Stream = Iterator[Tuple[np.ndarray, np.ndarray]]


def _tqdm(iterable, progress: bool, **kwargs):
    from tqdm import tqdm
    return tqdm(iterable, disable=not progress, **kwargs)


def distractor_stream(keys: np.ndarray, values: np.ndarray, total: int, noise: float = 0.3,
                      values_mode: str = 'copy', seed: int = 0, chunk: int = 65536) -> Stream:
    """The real entries, then distractors drawn from them, up to ``total`` entries.

    Args:
        keys (np.ndarray): (N, D) real keys (L2-normalised).
        values (np.ndarray): (N, P, C) their {0, 1} values.
        total (int): Entries in all, >= N.
        noise (float): Expected norm of the Gaussian noise added to a unit
            key (per-dimension std ``noise / sqrt(D)``).
        values_mode (str): ``'copy'`` (the source key's value) or ``'empty'``.
        seed (int): Seed; chunk ``i`` uses ``default_rng([seed, i])``, so the
            stream is the same every time it is drawn.
        chunk (int): Distractors per yielded chunk.

    Yields:
        tuple: (keys (n, D) float32, values (n, P, C) uint8) chunks.
    """
    n_real, dim = keys.shape
    if total < n_real:
        raise ValueError(f'memory_size={total} is smaller than the {n_real} real entries of the '
                         'memory split; ask for at least that many')
    if values_mode not in ('copy', 'empty'):
        raise ValueError(f"values_mode must be 'copy' or 'empty', got {values_mode!r}")
    yield keys.astype(np.float32), values.astype(np.uint8)
    for i, start in enumerate(range(0, total - n_real, chunk)):
        n = min(chunk, total - n_real - start)
        rng = np.random.default_rng([seed, i])
        src = rng.integers(0, n_real, n)
        k = keys[src].astype(np.float32)
        k += rng.standard_normal((n, dim), dtype=np.float32) * np.float32(noise / math.sqrt(dim))
        k /= np.maximum(np.linalg.norm(k, axis=1, keepdims=True), 1e-12)
        v = values[src] if values_mode == 'copy' else np.zeros((n, ) + values.shape[1:], np.uint8)
        yield k, v.astype(np.uint8)


def memory_from_stream(stream: Stream, key_dim: int, value_shape: Tuple[int, int],
                       options: dict, metadata: Optional[dict] = None, train_points: int = 0,
                       total: Optional[int] = None, progress: bool = False,
                       desc: str = 'memory') -> PatchMemory:
    """Fill a :class:`PatchMemory` from a stream; IVF indexes are trained on its first entries.

    Args:
        stream (Iterator): (keys, values) chunks.
        key_dim (int): Key size.
        value_shape (tuple): (P, C) of one value.
        options (dict): :class:`PatchMemory` index options.
        metadata (dict, optional): Memory metadata.
        train_points (int): An IVF index is trained on the first entries
            once at least this many are buffered (0: on all entries).
        total (int, optional): Entries expected (for the progress bar).
        progress (bool): Show a progress bar.
        desc (str): Its label.
    """
    memory = PatchMemory(key_dim, value_shape, metadata=metadata, **options)
    trained = options.get('index_type', 'flat') == 'flat'
    bar = _tqdm(None, progress, total=total, desc=desc, unit='entry', unit_scale=True)
    for keys, values in stream:
        memory.add(keys, values)
        bar.update(keys.shape[0])
        if not trained and train_points and len(memory) >= train_points:
            memory.finalize()
            trained = True
    bar.close()
    memory.finalize()
    return memory


def recall_at_k(exact_sims: np.ndarray, exact_ids: np.ndarray, sims: np.ndarray,
                ids: np.ndarray, tol: float = 1e-5) -> Tuple[float, float]:
    """(tie-tolerant recall, id recall) of (M, k) results against exact (M, k) ones.

    See the module docstring. Missing neighbours (id -1) never count.
    """
    k = exact_ids.shape[1]
    hits, ties = 0, 0
    for start in range(0, exact_ids.shape[0], 4096):
        e_i, a_i = exact_ids[start:start + 4096], ids[start:start + 4096]
        by_id = (a_i[:, :, None] == e_i[:, None, :]).any(-1) & (a_i >= 0)
        kth = exact_sims[start:start + 4096, k - 1:k]
        tied = (sims[start:start + 4096] >= kth - tol) & (a_i >= 0)
        hits += int(by_id.sum())
        ties += int((by_id | tied).sum())
    total = exact_ids.size
    return ties / total, hits / total


def time_search(memory: PatchMemory, queries: np.ndarray, k: int,
                batch_queries: int) -> Tuple[float, np.ndarray, np.ndarray]:
    """Mean seconds per ``memory.search`` of ``batch_queries`` queries, and all results."""
    sims, ids, seconds, calls = [], [], 0.0, 0
    for start in range(0, queries.shape[0], batch_queries):
        t0 = time.perf_counter()
        s, i = memory.search(queries[start:start + batch_queries], k)
        seconds += time.perf_counter() - t0
        calls += 1
        sims.append(s.numpy())
        ids.append(i.numpy())
    # a last partial batch is scaled up to a full one
    per_batch = seconds / (queries.shape[0] / batch_queries)
    return per_batch, np.concatenate(sims), np.concatenate(ids)


class _RecordingMemory:
    """Forwards to a memory, recording the queries, results and seconds of its searches."""

    def __init__(self, memory: PatchMemory) -> None:
        self.__dict__.update(memory=memory, queries=[], sims=[], ids=[], seconds=0.0)

    def __len__(self) -> int:
        return len(self.memory)

    def __getattr__(self, name: str):
        return getattr(self.__dict__['memory'], name)

    def search(self, queries, k: int):
        t0 = time.perf_counter()
        sims, ids = self.memory.search(queries, k)
        self.__dict__['seconds'] += time.perf_counter() - t0
        self.queries.append(torch.as_tensor(queries).float().cpu().numpy())
        self.sims.append(sims.numpy())
        self.ids.append(ids.numpy())
        return sims, ids

    def results(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        return tuple(np.concatenate(x) for x in (self.queries, self.sims, self.ids))


def evaluate_retrieval(model: torch.nn.Module, cfg, memory: PatchMemory, batch_size: int = 4,
                       progress: bool = True) -> dict:
    """Run ``model.test_step`` over the config's test split with ``memory``; mIoU and search.

    Returns:
        dict: ``metrics`` (the test evaluator's, mIoU in percent),
        ``search_seconds``, ``images``, and ``queries`` / ``sims`` / ``ids``
        (numpy arrays of every search, in order; not JSON).
    """
    from mmengine.evaluator import Evaluator
    from mmengine.runner import Runner
    loader_cfg = copy.deepcopy(cfg.test_dataloader)
    loader_cfg['batch_size'] = batch_size
    loader = Runner.build_dataloader(loader_cfg)
    evaluator = Evaluator(copy.deepcopy(cfg.test_evaluator))
    evaluator.dataset_meta = loader.dataset.metainfo
    recorder = _RecordingMemory(memory)
    model.memory = recorder
    try:
        with torch.no_grad():
            for data in _tqdm(loader, progress, desc='retrieval on the test split', unit='batch'):
                evaluator.process(model.test_step(data), data)
    finally:
        model.memory = memory
    metrics = evaluator.evaluate(len(loader.dataset))
    queries, sims, ids = recorder.results()
    return dict(metrics={k: float(v) for k, v in metrics.items()},
                search_seconds=recorder.seconds, images=len(loader.dataset), queries=queries,
                sims=sims, ids=ids)


def _default_nlists(total: int) -> List[int]:
    """Powers of two near sqrt(N) / 2, sqrt(N) and 2 sqrt(N), at most N / 39."""
    root = math.sqrt(total)
    out = sorted({max(1, 2**round(math.log2(root * f))) for f in (0.5, 1.0, 2.0)})
    return [n for n in out if n <= max(1, total // 39)] or [max(1, total // 39)]


def benchmark_search_scaling(model: torch.nn.Module, cfg, keys: np.ndarray, values: np.ndarray,
                             memory_size: int = 10**6, nlists: Optional[Sequence[int]] = None,
                             nprobes: Sequence[int] = DEFAULT_NPROBES, batch_size: int = 4,
                             noise: float = 0.3, values_mode: str = 'copy',
                             fp16_keys: Optional[bool] = None, min_recall: float = 0.95,
                             sweep_queries: int = 4096, exhaustive_queries: int = 256,
                             train_per_list: int = 50, seed: int = 0,
                             progress: bool = True) -> dict:
    """Exact (flat) vs IVF at ``memory_size`` entries: search time, recall@k, mIoU.

    1. The exact memory (the config's memory options, ``index_type='flat'``)
       labels the test split (``model.test_step``): mIoU, the search time
       and the exact results of every query token.
    2. For each ``nlist``, an IVF memory (trained on its first
       ``train_per_list * nlist`` entries) is searched with each ``nprobe``
       on the first ``sweep_queries`` query tokens (time per query batch,
       recall@k), and with ``nprobe = nlist`` on the first
       ``exhaustive_queries`` (an exhaustive IVF search: recall must be 1).
    3. The fastest setting with recall >= ``min_recall`` (else the best
       recall) labels the test split: its mIoU, search time and recall over
       all query tokens. Speed-up = exact / IVF search seconds in the same
       ``test_step`` loop, per query batch of ``batch_size`` crops.

    Returns:
        dict: Settings, ``exact``, ``sweep`` (rows), ``exhaustive_check``,
        ``chosen``, ``speedup`` and ``miou_ratio``.
    """
    k = max(model.ks)
    dim, value_shape = keys.shape[1], tuple(values.shape[1:])
    options = dict(model.memory_cfg, index_type='flat')
    if fp16_keys is not None:
        options['fp16_keys'] = bool(fp16_keys)
    fp16 = bool(options.get('fp16_keys', False))
    tol = 1e-3 if fp16 else 1e-5

    def stream() -> Stream:
        return distractor_stream(keys, values, memory_size, noise, values_mode, seed)

    def build(opts: dict, train_points: int, desc: str) -> Tuple[PatchMemory, float]:
        t0 = time.perf_counter()
        mem = memory_from_stream(stream(), dim, value_shape, opts, model.memory_metadata(),
                                 train_points, memory_size, progress, desc)
        return mem, time.perf_counter() - t0

    exact, exact_build = build(options, 0, 'exact memory')
    ev = evaluate_retrieval(model, cfg, exact, batch_size, progress)
    queries, e_sims, e_ids = ev['queries'], ev['sims'], ev['ids']
    tokens = queries.shape[0] // max(ev['images'], 1)
    batch_queries = tokens * batch_size
    per_query_batch = batch_queries / queries.shape[0]
    sub = slice(0, min(sweep_queries, queries.shape[0]))
    full = slice(0, min(exhaustive_queries, queries.shape[0]))
    rows, checks, best = [], [], None
    for nlist in nlists or _default_nlists(memory_size):
        opts = dict(options, index_type='ivf', nlist=int(nlist), nprobe=1)
        ivf, build_s = build(opts, train_per_list * int(nlist), f'IVF memory nlist={nlist}')
        for nprobe in _tqdm([n for n in nprobes if n < nlist] + [nlist], progress,
                            desc=f'nprobe sweep nlist={nlist}'):
            ivf.nprobe = int(nprobe)
            rows_q = full if nprobe == nlist else sub
            sec, s, i = time_search(ivf, queries[rows_q], k, batch_queries)
            rec, id_rec = recall_at_k(e_sims[rows_q], e_ids[rows_q], s, i, tol)
            row = dict(nlist=int(nlist), nprobe=int(nprobe), s_per_query_batch=sec,
                       recall=rec, id_recall=id_rec, queries=int(s.shape[0]),
                       build_s=build_s)
            if nprobe == nlist:
                checks.append(row)
                continue
            rows.append(row)
            ok = rec >= min_recall
            key = (not ok, sec if ok else -rec)
            if best is None or key < best[0]:
                best = (key, row, ivf)
        del ivf
    if best is None:
        raise ValueError('the nprobe sweep had no setting below nlist; give smaller nprobes')
    chosen, ivf = best[1], best[2]
    ivf.nprobe = chosen['nprobe']
    ev_ivf = evaluate_retrieval(model, cfg, ivf, batch_size, progress)
    rec, id_rec = recall_at_k(e_sims, e_ids, ev_ivf['sims'], ev_ivf['ids'], tol)
    exact_s = ev['search_seconds'] * per_query_batch
    ivf_s = ev_ivf['search_seconds'] * per_query_batch
    miou_e, miou_i = ev['metrics'].get('mIoU', float('nan')), ev_ivf['metrics'].get(
        'mIoU', float('nan'))
    return dict(
        memory_size=int(memory_size), real_entries=int(keys.shape[0]),
        distractors=int(memory_size - keys.shape[0]), distractor_noise=float(noise),
        distractor_values=values_mode, fp16_keys=fp16, k=k, batch_size=batch_size,
        queries_per_batch=batch_queries, query_tokens=int(queries.shape[0]),
        test_images=ev['images'], train_per_list=train_per_list, min_recall=min_recall,
        recall_tol=tol,
        exact=dict(s_per_query_batch=exact_s, build_s=exact_build, mIoU=miou_e,
                   bytes_per_entry=exact.bytes_per_entry(), metrics=ev['metrics']),
        sweep=rows, exhaustive_check=checks,
        chosen=dict(nlist=chosen['nlist'], nprobe=chosen['nprobe'], s_per_query_batch=ivf_s,
                    sweep_s_per_query_batch=chosen['s_per_query_batch'], recall=rec,
                    id_recall=id_rec, mIoU=miou_i, bytes_per_entry=ivf.bytes_per_entry(),
                    metrics=ev_ivf['metrics']),
        speedup=exact_s / max(ivf_s, 1e-12),
        miou_ratio=miou_i / miou_e if miou_e and math.isfinite(miou_e) else float('nan'))


def _clustered_keys(n: int, dim: int, centres: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, centres.shape[0], n)]
    x = x + rng.standard_normal((n, dim), dtype=np.float32) * np.float32(0.5 / math.sqrt(dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def benchmark_size_sweep(key_dim: int, sizes: Sequence[int], k: int = 30, nprobe: int = 16,
                         query_count: int = 4096, batch_queries: int = 4096,
                         fp16_keys: bool = False, clusters: int = 1000, seed: int = 0,
                         device: str = 'auto', progress: bool = True) -> List[Dict]:
    """Flat vs IVF (default nlist ~ 4 sqrt(N)) on synthetic clustered unit keys of each size.

    Keys: ``clusters`` random unit centres plus Gaussian noise of norm 0.5,
    renormalised (queries likewise). Returns one row per size: seconds per
    query batch of each index, recall@k of IVF, bytes per entry.
    """
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, key_dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    queries = _clustered_keys(query_count, key_dim, centres, seed + 1)
    rows = []
    for size in _tqdm([int(s) for s in sizes], progress, desc='memory sizes'):
        kk = min(k, size)

        def chunks(n: int = size) -> Stream:
            for i, start in enumerate(range(0, n, 65536)):
                m = min(65536, n - start)
                yield (_clustered_keys(m, key_dim, centres, 1000 + i), np.zeros((m, 1, 1),
                                                                               np.uint8))

        row: Dict = dict(memory_size=size, k=kk, nprobe=nprobe, fp16_keys=fp16_keys)
        results = {}
        for kind in ('flat', 'ivf'):
            nlist = max(1, min(int(round(4 * math.sqrt(size))), size // 39))
            opts = dict(index_type=kind, fp16_keys=fp16_keys, nprobe=nprobe, device=device,
                        nlist=nlist if kind == 'ivf' else None)
            train = 0 if kind == 'flat' else min(size, 50 * nlist)
            t0 = time.perf_counter()
            mem = memory_from_stream(chunks(), key_dim, (1, 1), opts, None, train)
            row[f'{kind}_build_s'] = time.perf_counter() - t0
            sec, s, i = time_search(mem, queries, kk, batch_queries)
            row[f'{kind}_s_per_query_batch'] = sec
            row[f'{kind}_bytes_per_entry'] = mem.bytes_per_entry()
            results[kind] = (s, i)
            if kind == 'ivf':
                row['nlist'] = nlist
            del mem
        row['recall'], row['id_recall'] = recall_at_k(*results['flat'], *results['ivf'],
                                                      1e-3 if fp16_keys else 1e-5)
        row['speedup'] = row['flat_s_per_query_batch'] / max(row['ivf_s_per_query_batch'], 1e-12)
        rows.append(row)
    return rows


"""Benchmarks of patch retrieval (behind ``tools/benchmark.py`` on a retrieval config).

:func:`benchmark_retrieval` runs, in one process and one JSON:

* ``throughput``: crops/s of ``RetrievalSegmentor.test_step`` (preprocess,
  feature extraction, search, aggregation, thresholding) with the memory of
  every patch of the memory split (built in the run), and of a compared
  segmentor (e.g. ViT-Tiny + UPerNet: forward, sigmoid, thresholds);
* ``bytes_per_patch``: per stored entry, from the index (and on disk);
* ``scaling``: exact vs IVF at a large memory
  (:func:`~.retrieval_scaling.benchmark_search_scaling`);
* ``size_sweep``: flat vs IVF on synthetic keys of several sizes;
* ``add``: seconds of :func:`aoissl_mm.apis.add_to_memory` for N labelled
  images on a saved memory, with a fixed number of CPU threads.
"""
import copy
import math
import os
import os.path as osp
import tempfile
import time
from typing import Optional, Sequence, Tuple

import numpy as np
import torch

from ..models.retrieval import PatchMemory, packed_size, patchify_masks
from .benchmark import _random_batch, benchmark_model, benchmark_segmentor
from .retrieval_scaling import (
    DEFAULT_NPROBES,
    _tqdm,
    benchmark_search_scaling,
    benchmark_size_sweep,
)

__all__ = [
    'collect_memory_entries', 'memory_from_entries', 'bytes_per_patch',
    'benchmark_retrieval_throughput', 'time_add_images', 'benchmark_retrieval',
    'format_retrieval_report', 'DEFAULT_NPROBES'
]


def collect_memory_entries(model: torch.nn.Module, loader_cfg: dict,
                           progress: bool = True) -> Tuple[np.ndarray, np.ndarray, int]:
    """Keys and values of every patch of a labelled dataloader's images (no sampling).

    The entries :meth:`RetrievalSegmentor.build_memory` would add (patch
    level): the model's normalised keys and the p x p x C masks in token
    order (padding 255 counts as background).

    Returns:
        tuple: (N, D) float32 keys, (N, p*p, C) uint8 values, images read.
    """
    from mmengine.runner import Runner
    if model.level != 'patch':
        raise ValueError(f'the retrieval benchmark needs level=patch, the model has '
                         f'level={model.level!r}')
    loader = Runner.build_dataloader(copy.deepcopy(loader_cfg))
    p = model.patch_size
    keys, values, images = [], [], 0
    with torch.no_grad():
        for data in _tqdm(loader, progress, desc='memory features', unit='batch'):
            data = model.data_preprocessor(data, False)
            masks = torch.stack([s.gt_sem_seg.data for s in data['data_samples']])
            masks = (masks == 1).to(torch.uint8).cpu()
            h, w = masks.shape[-2:]
            padded = masks.new_zeros(masks.shape[:2] + (h + (-h) % p, w + (-w) % p))
            padded[:, :, :h, :w] = masks
            keys.append(model.extract_feat(data['inputs']).flatten(0, 1).cpu().numpy())
            values.append(patchify_masks(padded, p).flatten(0, 1).numpy())
            images += masks.shape[0]
    if not images:
        raise ValueError('the memory dataloader yielded no images (check its data_root)')
    return np.concatenate(keys).astype(np.float32), np.concatenate(values), images


def memory_from_entries(model: torch.nn.Module, keys: np.ndarray, values: np.ndarray,
                        **options) -> PatchMemory:
    """A memory with the model's options (overridden by ``options``) and metadata, filled."""
    memory = PatchMemory(keys.shape[1], tuple(values.shape[1:]),
                         metadata=model.memory_metadata(), **dict(model.memory_cfg, **options))
    memory.add(keys, values)
    memory.finalize()
    return memory


def bytes_per_patch(model: torch.nn.Module, keys: np.ndarray, values: np.ndarray) -> dict:
    """Bytes per stored patch: hand formula, index accounting and files on disk.

    ``formula`` is D*2 + ceil(p*p*C/8) (fp16 key + bit-packed value);
    ``index`` is :meth:`PatchMemory.bytes_per_entry` for flat fp16 / fp32
    and IVF fp16 (which also stores an 8-byte id per entry); ``on_disk`` is
    the size of a saved flat fp16 memory of ``keys`` divided by its entries
    (headers and ``memory.json`` included).
    """
    dim, value_shape = keys.shape[1], tuple(values.shape[1:])
    value_bytes = packed_size(value_shape)
    out = dict(key_dim=dim, value_shape=list(value_shape), value_bytes=value_bytes,
               formula_fp16=dim * 2 + math.ceil(value_shape[0] * value_shape[1] / 8),
               entries_on_disk=int(keys.shape[0]))
    for name, opts in (('flat_fp16', dict(index_type='flat', fp16_keys=True)),
                       ('flat_fp32', dict(index_type='flat', fp16_keys=False)),
                       ('ivf_fp16', dict(index_type='ivf', fp16_keys=True))):
        out[f'index_{name}'] = PatchMemory(dim, value_shape, device='cpu',
                                           **opts).bytes_per_entry()
    memory = memory_from_entries(model, keys, values, index_type='flat', fp16_keys=True,
                                 device='cpu')
    with tempfile.TemporaryDirectory() as tmp:
        memory.save(osp.join(tmp, 'mem'))
        size = sum(os.path.getsize(osp.join(tmp, 'mem', f)) for f in os.listdir(
            osp.join(tmp, 'mem')))
    out['on_disk_flat_fp16'] = size / keys.shape[0]
    out['goal_bytes'] = 1024
    return out


def benchmark_retrieval_throughput(model: torch.nn.Module, cfg, memory: PatchMemory,
                                   crop_size: Sequence[int] = (512, 512), batch_size: int = 4,
                                   warmup: int = 3, iters: int = 10,
                                   device: Optional[str] = None,
                                   amp: Optional[bool] = None) -> dict:
    """Crops/s of ``model.test_step`` with ``memory``, and the feature-extraction share.

    Returns:
        dict: :func:`~.benchmark.benchmark_model`'s keys plus
        ``feature_s_per_batch`` (``extract_feat`` alone on the same batch),
        ``memory_entries`` and ``memory_index``.
    """
    model.memory = memory
    res = benchmark_model(model, cfg, crop_size, batch_size, warmup, iters, device, amp)
    num_channels = len(cfg.model.data_preprocessor.get('mean') or [0, 0])
    dev = next(model.parameters()).device
    with torch.no_grad():
        data = model.data_preprocessor(_random_batch(num_channels, crop_size, batch_size), False)
        inputs = data['inputs'].to(dev)
        model.extract_feat(inputs)
        if dev.type == 'cuda':
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(iters):
            model.extract_feat(inputs)
        if dev.type == 'cuda':
            torch.cuda.synchronize()
    res.update(feature_s_per_batch=(time.perf_counter() - t0) / iters,
               memory_entries=len(memory),
               memory_index=dict(index_type=memory.info()['index_type'],
                                 fp16_keys=memory.info()['fp16_keys'],
                                 backend=memory.info()['backend']))
    return res


def time_add_images(model: torch.nn.Module, cfg, keys: np.ndarray, values: np.ndarray,
                    num_images: int = 42, data_root: Optional[str] = None, split: str = 'train',
                    threads: int = 2, seed: int = 1, progress: bool = True) -> dict:
    """Seconds of :func:`aoissl_mm.apis.add_to_memory` for ``num_images`` labelled images.

    A memory of ``keys`` / ``values`` (the model's options) is saved to a
    temporary directory; the first ``num_images`` images of
    ``data_root/images/<split>`` (default: that many freshly generated
    synthetic images, seed ``seed``, as a new device) are added to it with
    torch and faiss limited to ``threads`` threads. Generation is not timed.
    """
    from ..apis import add_to_memory, memory_dataloader_cfg
    from ..datasets.io import find_buffer_pairs
    from ..datasets.synthetic import generate_synthetic_aoi
    old_torch = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        mem_dir = osp.join(tmp, 'memory')
        memory_from_entries(model, keys, values).save(mem_dir)
        generated = data_root is None
        if generated:
            data_root, split = osp.join(tmp, 'new_device'), 'train'
            generate_synthetic_aoi(data_root, num_train=num_images, num_val=0, num_test=0,
                                   num_pretrain=0, seed=seed, progress=progress)
        found = len(find_buffer_pairs(osp.join(data_root, 'images', split)))
        if found < num_images:
            raise ValueError(f'--add-images {num_images}: {data_root}/images/{split} holds only '
                             f'{found} images')
        loader = memory_dataloader_cfg(cfg, data_root, split)
        loader['dataset']['indices'] = int(num_images)
        try:
            torch.set_num_threads(threads)
            _faiss_threads(threads)
            added, seconds = add_to_memory(model, mem_dir, loader, progress)
        finally:
            torch.set_num_threads(old_torch)
            _faiss_threads(None)
        total = len(PatchMemory.load(mem_dir, device='cpu'))
    return dict(images=int(num_images), added_entries=int(added), memory_before=len(keys),
                memory_after=total, seconds=seconds, threads=threads,
                generated_images=generated, goal_s=60.0)


def _faiss_threads(threads: Optional[int]) -> None:
    """Set faiss's OpenMP threads (None: back to the OMP default)."""
    try:
        import faiss
    except ImportError:  # pragma: no cover
        return
    if threads is None:
        threads = int(os.environ.get('OMP_NUM_THREADS', 0) or os.cpu_count() or 1)
    faiss.omp_set_num_threads(int(threads))


def benchmark_retrieval(config: str, checkpoint: Optional[str] = None,
                        crop_size: Sequence[int] = (512, 512), batch_size: int = 4,
                        warmup: int = 3, iters: int = 10, device: Optional[str] = None,
                        amp: Optional[bool] = None, compare: Optional[str] = None,
                        compare_checkpoint: Optional[str] = None,
                        memory_size: Optional[int] = None, scaling: Optional[dict] = None,
                        memory_sizes: Optional[Sequence[int]] = None,
                        add_images: Optional[int] = None, add: Optional[dict] = None,
                        cfg_options: Optional[dict] = None, progress: bool = True) -> dict:
    """Everything in the module docstring, for one retrieval config.

    Args:
        config (str): A ``RetrievalSegmentor`` config (patch level).
        checkpoint (str, optional): Backbone weights; without one (and no
            ``init_cfg``) the backbone is random (``random_backbone`` in the
            output).
        crop_size, batch_size, warmup, iters, device, amp: As
            :func:`~.benchmark.benchmark_segmentor`.
        compare (str, optional): Another segmentation config timed the same
            way (e.g. ``configs/vit-tiny_upernet_aoi.py``).
        compare_checkpoint (str, optional): Its weights (random otherwise).
        memory_size (int, optional): Run the exact vs IVF scaling at this
            many entries; ``scaling`` holds further keyword arguments of
            :func:`~.retrieval_scaling.benchmark_search_scaling`.
        memory_sizes (Sequence[int], optional): Sizes of the synthetic-key
            flat vs IVF sweep.
        add_images (int, optional): Time adding this many images;
            ``add`` holds further arguments of :func:`time_add_images`.
        cfg_options (dict, optional): Config overrides.
        progress (bool): Progress bars.

    Returns:
        dict: ``config``, ``random_backbone``, ``throughput``, ``compare``,
        ``speedup``, ``bytes_per_patch``, ``scaling``, ``size_sweep``, ``add``
        (absent parts are None).
    """
    from ..apis import init_retrieval_model, memory_dataloader_cfg
    from .runner_setup import load_config
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    res = dict(config=config, checkpoint=checkpoint, compare=None, speedup=None, scaling=None,
               size_sweep=None, add=None)
    if compare:  # first: its peak RSS then excludes the retrieval memory
        res['compare'] = benchmark_segmentor(load_config(compare), compare_checkpoint,
                                             crop_size, batch_size, warmup, iters, device, amp)
        res['compare'].update(config=compare, checkpoint=compare_checkpoint,
                              random_weights=compare_checkpoint is None)
    options = dict(cfg_options or {})
    cfg = load_config(config, options)
    if cfg.model.get('type') != 'RetrievalSegmentor':
        raise TypeError(f'{config}: model.type must be RetrievalSegmentor, got '
                        f"{cfg.model.get('type')}")
    needs = not (cfg.model.get('random_backbone') or cfg.model.backbone.get('init_cfg'))
    if checkpoint is None and needs:
        options['model.random_backbone'] = True
    torch.manual_seed(0)
    model, cfg = init_retrieval_model(config, checkpoint, options, device=device)
    res['random_backbone'] = checkpoint is None and not cfg.model.backbone.get('init_cfg')
    t0 = time.perf_counter()
    keys, values, images = collect_memory_entries(model, memory_dataloader_cfg(cfg), progress)
    memory = memory_from_entries(model, keys, values)
    res['memory'] = dict(images=images, entries=len(memory), build_s=time.perf_counter() - t0,
                         split=cfg.custom_hooks[0]['dataloader']['dataset']['data_prefix'])
    res['throughput'] = benchmark_retrieval_throughput(model, cfg, memory, crop_size, batch_size,
                                                       warmup, iters, device, amp)
    if res['compare']:
        res['speedup'] = res['throughput']['crops_per_s'] / res['compare']['crops_per_s']
    res['bytes_per_patch'] = bytes_per_patch(model, keys, values)
    del memory
    model.memory = None
    if memory_size:
        res['scaling'] = benchmark_search_scaling(model, cfg, keys, values, int(memory_size),
                                                  batch_size=batch_size, progress=progress,
                                                  **dict(scaling or {}))
    if memory_sizes:
        res['size_sweep'] = benchmark_size_sweep(keys.shape[1], memory_sizes, max(model.ks),
                                                 progress=progress)
    if add_images:
        res['add'] = time_add_images(model, cfg, keys, values, int(add_images),
                                     progress=progress, **dict(add or {}))
    res['torch_threads'] = torch.get_num_threads()
    return res


def _table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    from prettytable import PrettyTable
    table = PrettyTable(list(header))
    for row in rows:
        table.add_row([f'{v:.4g}' if isinstance(v, float) else v for v in row])
    return table.get_string()


def format_retrieval_report(res: dict) -> str:
    """The readable tables of a :func:`benchmark_retrieval` result."""
    lines = [f"config: {res['config']}   backbone: " + (
        'RANDOM (no checkpoint: model.random_backbone=True)' if res.get('random_backbone') else
        f"from {res.get('checkpoint') or 'init_cfg'}"),
        f"memory: {res['memory']['entries']} patches of {res['memory']['images']} images "
        f"(built in {res['memory']['build_s']:.1f} s)"]
    rows = []
    for name, r in (('retrieval', res['throughput']), ('compare', res.get('compare'))):
        if r:
            rows.append([name, osp.basename(r.get('config') or res['config']), r['device'],
                         'x'.join(map(str, r['crop_size'])), r['batch_size'], r['crops_per_s'],
                         r['s_per_batch'], r.get('feature_s_per_batch', '-'), r['peak_mem_mib']])
    lines.append(_table(['model', 'config', 'device', 'crop', 'batch', 'crops/s', 's/batch',
                         'features s/batch', 'peak MiB'], rows))
    if res.get('speedup') is not None:
        lines.append(f"(a) retrieval / compare crops/s: {res['speedup']:.2f}x (goal >= 1.5x)")
    b = res['bytes_per_patch']
    lines.append(_table(['(b) bytes per patch', 'formula D*2+ceil(p*p*C/8)', 'flat fp16',
                         'ivf fp16 (+8 B id)', 'flat fp32', 'on disk (flat fp16)'],
                        [['', b['formula_fp16'], b['index_flat_fp16'], b['index_ivf_fp16'],
                          b['index_flat_fp32'], b['on_disk_flat_fp16']]]) +
                 '\n(goal <= 1024 B with fp16 keys)')
    sc = res.get('scaling')
    if sc:
        lines.append(f"(c) {sc['memory_size']} entries = {sc['real_entries']} real + "
                     f"{sc['distractors']} distractors (real key + noise {sc['distractor_noise']}"
                     f", renormalised; values: {sc['distractor_values']}), fp16 keys "
                     f"{sc['fp16_keys']}, k={sc['k']}, {sc['queries_per_batch']} queries/batch")
        rows = [['exact', '-', '-', sc['exact']['s_per_query_batch'], 1.0, 1.0, '']]
        rows += [['ivf', r['nlist'], r['nprobe'], r['s_per_query_batch'], r['recall'],
                  r['id_recall'], 'sweep'] for r in sc['sweep']]
        rows += [['ivf', r['nlist'], r['nprobe'], r['s_per_query_batch'], r['recall'],
                  r['id_recall'], f"exhaustive check ({r['queries']} queries)"]
                 for r in sc['exhaustive_check']]
        c = sc['chosen']
        rows.append(['ivf chosen', c['nlist'], c['nprobe'], c['s_per_query_batch'], c['recall'],
                     c['id_recall'], 'all test queries, test_step loop'])
        lines.append(_table(['index', 'nlist', 'nprobe', 's/query batch', 'recall@k',
                             'id recall@k', 'note'], rows))
        lines.append(f"IVF speed-up {sc['speedup']:.1f}x (goal >= 10x); mIoU exact "
                     f"{sc['exact']['mIoU']:.2f} vs IVF {c['mIoU']:.2f}: ratio "
                     f"{sc['miou_ratio']:.4f} (goal >= 0.99)")
    if res.get('size_sweep'):
        lines.append(_table(['size (synthetic keys)', 'nlist', 'nprobe', 'flat s/batch',
                             'ivf s/batch', 'speed-up', 'recall@k'],
                            [[r['memory_size'], r['nlist'], r['nprobe'],
                              r['flat_s_per_query_batch'], r['ivf_s_per_query_batch'],
                              r['speedup'], r['recall']] for r in res['size_sweep']]))
    a = res.get('add')
    if a:
        lines.append(f"(d) add_to_memory: {a['images']} images ({a['added_entries']} patches) to "
                     f"a saved memory of {a['memory_before']}: {a['seconds']:.1f} s on "
                     f"{a['threads']} threads (goal <= 60 s)")
    return '\n'.join(lines)

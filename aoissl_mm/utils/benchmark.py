"""Throughput of the full inference path (preprocess + forward + post-processing)."""
import json
import os
import resource
import time
from typing import Optional, Sequence, Tuple

import torch

from .atomic_io import atomic_write_text


def _peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _build_model(cfg, checkpoint: Optional[str], device: str) -> torch.nn.Module:
    """Build ``cfg.model`` in its registry scope and load ``checkpoint`` strictly."""
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmseg')):
        model = MODELS.build(cfg.model)
    if checkpoint:
        from .checkpoint import check_checkpoint_matches
        model.load_state_dict(check_checkpoint_matches(model, checkpoint))
    return model.to(device).eval()


def _random_batch(num_channels: int, crop_size: Sequence[int], batch_size: int) -> dict:
    """A seeded batch of uint8 crops with the metainfo a test pipeline would give."""
    from mmseg.structures import SegDataSample
    h, w = crop_size
    gen = torch.Generator().manual_seed(0)
    inputs = [torch.randint(0, 256, (num_channels, h, w), generator=gen, dtype=torch.uint8)
              for _ in range(batch_size)]
    samples = []
    for _ in range(batch_size):
        sample = SegDataSample()
        sample.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _time_test_steps(model: torch.nn.Module, data: dict, warmup: int, iters: int,
                     is_cuda: bool, amp: bool) -> Tuple[float, list]:
    """Seconds for ``iters`` timed ``test_step`` calls after ``warmup`` untimed ones."""

    def step():
        with torch.autocast(device_type='cuda' if is_cuda else 'cpu', dtype=torch.float16,
                            enabled=amp):
            return model.test_step(data)

    with torch.no_grad():
        for _ in range(warmup):
            step()
        if is_cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        out = []
        for _ in range(iters):
            out = step()
        if is_cuda:
            torch.cuda.synchronize()
    return time.perf_counter() - t0, out


def benchmark_segmentor(cfg,
                        checkpoint: Optional[str] = None,
                        crop_size: Sequence[int] = (512, 512),
                        batch_size: int = 4,
                        warmup: int = 3,
                        iters: int = 10,
                        device: Optional[str] = None,
                        amp: Optional[bool] = None) -> dict:
    """Measure crops/s of ``model.test_step`` on random 2-channel uint8 crops.

    The timed path is what a user runs per batch: the data preprocessor
    (cast, Z-score, padding), the backbone and head forward, and the
    multi-label post-processing (sigmoid, per-class thresholds). Data loading
    from disk is excluded. On CUDA, timing is synchronised and AMP (fp16
    autocast) is on by default; peak memory is the CUDA allocator's peak, on
    CPU the process's peak resident set size.

    Args:
        cfg (Config): A segmentation config.
        checkpoint (str, optional): Weights to load (weights-only, strict).
        crop_size (Sequence[int]): (H, W) of each crop.
        batch_size (int): Crops per forward.
        warmup (int): Untimed iterations first.
        iters (int): Timed iterations (at least 1).
        device (str, optional): Defaults to ``'cuda'`` when available.
        amp (bool, optional): fp16 autocast; defaults to True on CUDA.

    Returns:
        dict: ``crops_per_s``, ``s_per_batch``, ``peak_mem_mib`` and the settings.

    Raises:
        ValueError: ``iters`` < 1, or the model predicts masks of another size
            than the crops.
    """
    if iters < 1:
        raise ValueError(f'benchmark: iters must be at least 1, got {iters}')
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    model = _build_model(cfg, checkpoint, device)
    return benchmark_model(model, cfg, crop_size, batch_size, warmup, iters, device, amp)


def benchmark_model(model: torch.nn.Module,
                    cfg,
                    crop_size: Sequence[int] = (512, 512),
                    batch_size: int = 4,
                    warmup: int = 3,
                    iters: int = 10,
                    device: Optional[str] = None,
                    amp: Optional[bool] = None) -> dict:
    """Measure crops/s of ``model.test_step`` for an already built model (in eval mode).

    As :func:`benchmark_segmentor`, for a model built elsewhere (e.g. a
    ``RetrievalSegmentor`` whose memory is set first).

    Args:
        model (nn.Module): The segmentor, already on ``device``.
        cfg (Config): Its config (``model.data_preprocessor`` and
            ``model.backbone.type`` are read).
        crop_size (Sequence[int]): (H, W) of each crop.
        batch_size (int): Crops per forward.
        warmup (int): Untimed iterations first.
        iters (int): Timed iterations (at least 1).
        device (str, optional): Where ``model`` is; defaults to ``'cuda'``
            when available.
        amp (bool, optional): fp16 autocast; defaults to True on CUDA.

    Returns:
        dict: As :func:`benchmark_segmentor`'s.
    """
    if iters < 1:
        raise ValueError(f'benchmark: iters must be at least 1, got {iters}')
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    is_cuda = device.startswith('cuda')
    amp = is_cuda if amp is None else amp
    h, w = crop_size
    num_channels = len(cfg.model.data_preprocessor.get('mean') or [0, 0])
    data = _random_batch(num_channels, (h, w), batch_size)
    elapsed, out = _time_test_steps(model, data, warmup, iters, is_cuda, amp)
    got = tuple(out[0].pred_sem_seg.data.shape[-2:])
    if got != (h, w):
        raise ValueError(f'benchmark: {cfg.model.type} predicted {got} masks for {h}x{w} crops')
    peak = torch.cuda.max_memory_allocated() / 2**20 if is_cuda else _peak_rss_mib()
    params = sum(p.numel() for p in model.parameters())
    return dict(
        model=cfg.model.backbone.type, crop_size=[h, w], batch_size=batch_size, iters=iters,
        warmup=warmup, device=(torch.cuda.get_device_name() if is_cuda else
                               f'cpu ({torch.get_num_threads()} threads)'),
        amp=bool(amp), crops_per_s=batch_size * iters / elapsed,
        s_per_batch=elapsed / iters, peak_mem_mib=peak,
        peak_mem_kind='cuda max_memory_allocated' if is_cuda else 'process peak RSS',
        params=params, torch=torch.__version__)


def write_json(path: str, payload) -> None:
    """Write ``payload`` as JSON atomically."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write_text(path, json.dumps(payload, indent=2) + '\n')

"""Crops/s of an exported model under onnxruntime, timed as PyTorch is in benchmark_model."""
import time
from typing import Optional, Sequence

import numpy as np
import torch

from ..models.utils.multilabel_prediction import threshold_scores


def benchmark_onnx(path: str,
                   crop_size: Sequence[int] = (512, 512),
                   batch_size: int = 4,
                   warmup: int = 3,
                   iters: int = 10,
                   num_threads: Optional[int] = None) -> dict:
    """Crops/s of one onnxruntime call (raw pixels -> probabilities) plus the thresholds.

    The same seeded random uint8 crops as the PyTorch benchmark, given to the
    graph as float32 (its Z-score is inside); casting and thresholding
    (``prob >= t``) are timed, as the PyTorch path times its preprocessor and
    post-processing.

    Args:
        path (str): An exported ``.onnx`` file.
        crop_size (Sequence[int]): (H, W); a fixed-size export must be run at
            its crop.
        batch_size (int): Crops per call.
        warmup (int): Untimed calls first.
        iters (int): Timed calls (at least 1).
        num_threads (int, optional): onnxruntime intra-op threads; defaults
            to ``torch.get_num_threads()`` so both backends get the same.

    Returns:
        dict: ``crops_per_s``, ``s_per_batch`` and the settings.
    """
    from .onnx_backend import OnnxSegmentor
    if iters < 1:
        raise ValueError(f'benchmark: iters must be at least 1, got {iters}')
    threads = int(num_threads or torch.get_num_threads())
    model = OnnxSegmentor(path, num_threads=threads)
    h, w = (int(v) for v in crop_size)
    if model.fixed_size is not None and (h, w) != tuple(model.fixed_size):
        raise ValueError(f'{path}: exported for fixed {model.fixed_size} inputs, asked to '
                         f'benchmark {h}x{w} crops (use --crop {model.fixed_size[0]})')
    gen = torch.Generator().manual_seed(0)
    crops = torch.randint(0, 256, (batch_size, 2, h, w), generator=gen,
                          dtype=torch.uint8).numpy()

    def step():
        probs = model.run(crops.astype(np.float32))
        return threshold_scores(torch.from_numpy(probs), model.thresholds)

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(iters):
        out = step()
    elapsed = time.perf_counter() - t0
    if tuple(out.shape[-2:]) != (h, w):
        raise ValueError(f'benchmark: {path} predicted {tuple(out.shape[-2:])} masks for '
                         f'{h}x{w} crops')
    import onnxruntime
    return dict(backend=f'onnxruntime {onnxruntime.__version__}', onnx=path,
                crop_size=[h, w], batch_size=batch_size, iters=iters, warmup=warmup,
                device=f'cpu ({threads} threads)', crops_per_s=batch_size * iters / elapsed,
                s_per_batch=elapsed / iters, fixed_size=model.fixed_size is not None)

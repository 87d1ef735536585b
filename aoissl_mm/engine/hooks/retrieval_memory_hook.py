"""Build (or load) a RetrievalSegmentor's memory before it is evaluated."""
import copy
import logging
import os.path as osp
from typing import Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS


def unwrap_model(model: object) -> object:
    """The segmentor inside DDP and TTA wrappers."""
    while hasattr(model, 'module'):
        model = model.module
    return model


def memory_loader_cfg(dataloader: dict, whole_images: bool = False) -> dict:
    """A copy of a memory dataloader config; ``whole_images`` leaves out its crop.

    Args:
        dataloader (dict): The memory dataloader config (its ``dataset``
            has a ``pipeline``).
        whole_images (bool): Drop every ``PadCenterCrop`` from the dataset
            pipeline: the memory holds the whole images, each padded to a
            multiple of the patch with black by the segmentor (as queries
            are). Images of different sizes cannot share a batch, so the
            batch size becomes 1. Defaults to False (the pipeline's 512
            crop, spec §8.1).

    Returns:
        dict: The dataloader config to build.

    Raises:
        ValueError: ``whole_images`` on a dataset without a ``pipeline``.
    """
    loader = copy.deepcopy(dataloader)
    if not whole_images:
        return loader
    dataset = loader.get('dataset') or {}
    pipeline = dataset.get('pipeline')
    if not isinstance(pipeline, (list, tuple)):
        raise ValueError('RetrievalMemoryHook(whole_images=True) needs the memory dataloader\'s '
                         f"dataset.pipeline (a list of transforms), got {pipeline!r}")
    kept = [t for t in pipeline if not (isinstance(t, dict) and t.get('type') == 'PadCenterCrop')]
    dataset['pipeline'] = kept
    loader['batch_size'] = 1
    print_log(f'retrieval memory from whole images: {len(pipeline) - len(kept)} PadCenterCrop '
              'left out of the memory pipeline, one image per batch', logger='current',
              level=logging.INFO)
    return loader


@HOOKS.register_module()
class RetrievalMemoryHook(Hook):
    """Fill the retrieval segmentor's memory before ``runner.test()`` / ``val()``.

    Runs after the checkpoint is loaded (mmengine loads it before the test
    loop starts), so the keys come from the evaluated backbone. Either
    ``load_from`` names a saved memory (its metadata is checked against the
    model: level, patch size, key size, classes, backbone config and weight
    digest), or every image of ``dataloader`` (a labelled split, e.g. the
    training images pad + centre-cropped to 512, spec §8.1) is added with a
    progress bar; ``save_to`` then keeps the memory for ``tools/memory.py``
    and later runs. Under DDP every rank builds the same full memory.

    Args:
        dataloader (dict, optional): Memory dataloader config (a labelled
            dataset with ``gt_sem_seg``).
        load_from (str, optional): A saved memory directory; it wins over
            ``dataloader``.
        save_to (str, optional): Where to save a built memory (atomically).
        rebuild (bool): Rebuild even when the model already has a memory
            (e.g. at every validation of a changing backbone). Defaults to
            False.
        whole_images (bool): Build the memory from whole images: the
            ``PadCenterCrop`` of ``dataloader``'s pipeline is left out and
            each image is padded bottom/right to a multiple of the patch
            with black (masks: background), as queries are, so an H x W
            image gives ceil(H/p) * ceil(W/p) patches. Defaults to False
            (pad + centre-crop to 512, spec §8.1). ``tools/memory.py``,
            ``tools/tune_retrieval.py`` and ``tools/infer.py`` follow the same
            switch (:func:`memory_loader_cfg`).
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 dataloader: Optional[dict] = None,
                 load_from: Optional[str] = None,
                 save_to: Optional[str] = None,
                 rebuild: bool = False,
                 whole_images: bool = False) -> None:
        if dataloader is None and load_from is None:
            raise ValueError('RetrievalMemoryHook needs a memory: set dataloader (labelled '
                             'images to build it from) or load_from (a saved memory)')
        self.dataloader_cfg = dataloader
        self.load_from = load_from
        self.save_to = save_to
        self.rebuild = rebuild
        self.whole_images = bool(whole_images)

    def _fill(self, runner) -> None:
        model = unwrap_model(runner.model)
        if not hasattr(model, 'build_memory'):
            raise TypeError('RetrievalMemoryHook needs a RetrievalSegmentor, got '
                            f'{type(model).__name__}')
        if model.memory is not None and not self.rebuild:
            return
        if self.load_from is not None:
            if not osp.isdir(self.load_from):
                raise FileNotFoundError(f'RetrievalMemoryHook.load_from: no memory directory '
                                        f'{self.load_from}')
            model.load_memory(self.load_from)
            return
        loader = runner.build_dataloader(memory_loader_cfg(self.dataloader_cfg,
                                                           self.whole_images), seed=runner.seed)
        memory = model.build_memory(loader, progress=runner.rank == 0)
        if self.save_to is not None and runner.rank == 0:
            memory.save(self.save_to)
            print_log(f'RetrievalMemoryHook: memory saved to {self.save_to}', logger='current',
                      level=logging.INFO)

    def before_val(self, runner) -> None:
        """Fill the memory before validation."""
        self._fill(runner)

    def before_test(self, runner) -> None:
        """Fill the memory before testing."""
        self._fill(runner)

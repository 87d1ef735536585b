"""Memory building, checking and loading of the retrieval segmentor."""
import hashlib
import logging
import math
from typing import Iterable, List, Optional, Sequence, Tuple

import torch
from mmengine.logging import print_log
from torch import Tensor

from ..retrieval import PatchMemory, patchify_masks
from ..retrieval.patch_sampling import sample_patches


class RetrievalMemoryMixin:
    """The memory half of :class:`RetrievalSegmentor`: fill, check and load a :class:`PatchMemory`.

    The host provides ``backbone``, ``backbone_cfg``, ``data_preprocessor``,
    ``extract_feat``, ``level``, ``patch_size``, ``num_classes``,
    ``class_names``, ``memory_cfg`` (:class:`PatchMemory` options), ``memory_load_cfg``
    (``mmap_keys``, ``verify``), ``memory_sampling`` and the ``memory``
    attribute.
    """

    # ------------------------------------------------------------ memory
    def backbone_digest(self) -> str:
        """SHA-256 (first 16 hex digits) of the backbone weights: which backbone built a memory."""
        digest = hashlib.sha256()
        for name, tensor in sorted(self.backbone.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    def memory_metadata(self) -> dict:
        """What a memory must have been built with to serve this model."""
        pre = self.data_preprocessor
        mean = getattr(pre, 'mean', None)
        std = getattr(pre, 'std', None)
        cfg = {k: v for k, v in self.backbone_cfg.items() if k != 'init_cfg'}
        return dict(
            level=self.level,
            patch_size=self.patch_size,
            classes=self.class_names,
            num_classes=self.num_classes,
            backbone=_jsonable(cfg),
            backbone_digest=self.backbone_digest(),
            normalisation=dict(
                mean=[round(float(v), 6) for v in mean.flatten()] if mean is not None else None,
                std=[round(float(v), 6) for v in std.flatten()] if std is not None else None))

    @property
    def key_dim(self) -> int:
        """Size of this model's keys: one black patch run through :meth:`extract_feat` (cached)."""
        if getattr(self, '_key_dim', None) is None:
            pre = self.data_preprocessor
            mean = getattr(pre, 'mean', None)
            channels = (int(mean.numel()) if mean is not None else
                        int(self.backbone_cfg.get('in_channels', 2)))
            param = next(self.backbone.parameters(), None)
            device = param.device if param is not None else 'cpu'
            training = self.backbone.training
            try:
                keys = self.extract_feat(torch.zeros(1, channels, self.patch_size,
                                                     self.patch_size, device=device))
            finally:
                self.backbone.train(training)  # extract_feat switches to eval
            self._key_dim = int(keys.shape[-1])
        return self._key_dim

    def memory_fields(self) -> dict:
        """The saved fields a memory must have for this model: ``key_dim`` (and, for
        ``level='patch'``, ``value_shape`` = [p*p, C]: the patch geometry)."""
        fields = dict(key_dim=self.key_dim)
        if self.level == 'patch':
            fields['value_shape'] = [self.patch_size**2, self.num_classes]
        return fields

    def _check_memory_shape(self, key_dim: int, value_shape: Sequence[int], metadata: dict,
                            source: str) -> None:
        """Key size and value shape (units, classes) of a memory against this model."""
        if int(key_dim) != self.key_dim:
            raise ValueError(f'{source}: key_dim is {key_dim} in the memory, but this model '
                             f'gives {self.key_dim}-d keys; rebuild the memory with this '
                             'config and checkpoint (tools/memory.py build)')
        if self.level == 'patch':
            units = self.patch_size**2
        else:
            size = metadata.get('image_size')
            units = math.prod(size) if isinstance(size, list) else None
        if list(value_shape) != [units, self.num_classes]:
            raise ValueError(f'{source}: value_shape is {list(value_shape)} (units, classes) '
                             f'in the memory, but this model needs {[units, self.num_classes]} '
                             f'(level={self.level!r}, patch_size={self.patch_size}, image_size='
                             f"{metadata.get('image_size')})")

    def new_memory(self, key_dim: int, value_shape: Tuple[int, int],
                   image_size: Optional[Sequence[int]] = None) -> PatchMemory:
        """An empty :class:`PatchMemory` with this model's options and metadata.

        Args:
            key_dim (int): Key size.
            value_shape (tuple[int, int]): (units, classes) of one entry.
            image_size (Sequence[int], optional): (H, W) of the memory
                images, stored for ``level='image'``.
        """
        metadata = self.memory_metadata()
        if image_size is not None:
            metadata['image_size'] = [int(v) for v in image_size]
        return PatchMemory(key_dim=key_dim, value_shape=value_shape, metadata=metadata,
                           **self.memory_cfg)

    def _memory_entries(self, inputs: Tensor, masks: Tensor,
                        generator: Optional[torch.Generator]) -> Iterable[Tuple[Tensor, Tensor]]:
        """(keys, values) of each image of a normalised batch and its (B, C, H, W) masks."""
        if masks.shape[-2:] != inputs.shape[-2:]:
            raise ValueError(f'memory images and masks differ in size: {tuple(inputs.shape)} vs '
                             f'{tuple(masks.shape)}')
        masks = (masks == 1).to(torch.uint8)  # padding (255) is background
        keys = self.extract_feat(inputs)
        if self.level == 'image':
            for i in range(inputs.shape[0]):
                yield keys[i:i + 1], masks[i].flatten(1).t()[None]
            return
        p = self.patch_size
        height, width = masks.shape[-2:]
        padded = masks.new_zeros(masks.shape[:2] + (height + (-height) % p, width + (-width) % p))
        padded[:, :, :height, :width] = masks
        values = patchify_masks(padded, p)
        for i in range(inputs.shape[0]):
            k_i, v_i = keys[i], values[i]
            if self.memory_sampling is not None:
                keep = sample_patches(v_i, int(self.memory_sampling['per_image']), generator)
                k_i, v_i = k_i[keep], v_i[keep]
            yield k_i, v_i

    @torch.no_grad()
    def build_memory(self, dataloader: Iterable, memory: Optional[PatchMemory] = None,
                     progress: bool = True) -> PatchMemory:
        """Fill a memory from a labelled dataloader (every patch of every image by default).

        Images are used at the size the dataloader gives them (the configs:
        pad + centre-cropped to 512; ``RetrievalMemoryHook(whole_images=True)``:
        whole). A batch of images of different sizes is taken one image at a
        time, each padded bottom/right to a multiple of the patch with black
        (masks: background), as queries are, so a whole H x W image gives
        ceil(H/p) * ceil(W/p) patch entries.

        Args:
            dataloader (Iterable): Yields mmseg batches (``inputs``,
                ``data_samples`` with ``gt_sem_seg`` (C, H, W)).
            memory (PatchMemory, optional): A memory to add to (``tools/memory.py
                add``); its metadata must match this model. None: a new one.
            progress (bool): Show a progress bar. Defaults to True.

        Returns:
            PatchMemory: The memory, also set as ``self.memory``.

        Raises:
            ValueError: The dataloader yields nothing, or image-level memory
                images differ in size.
        """
        from tqdm import tqdm
        if memory is not None:
            self.check_memory(memory)
        generator = None
        if self.memory_sampling is not None:
            generator = torch.Generator().manual_seed(int(self.memory_sampling.get('seed', 0)))
        total = len(dataloader) if hasattr(dataloader, '__len__') else None
        images = 0
        batches = (part for data in tqdm(dataloader, total=total, desc='building retrieval memory',
                                         unit='batch', disable=not progress)
                   for part in _same_size_parts(data))
        for data in batches:
            data = self.data_preprocessor(data, False)
            masks = torch.stack([s.gt_sem_seg.data for s in data['data_samples']])
            for keys, values in self._memory_entries(data['inputs'], masks, generator):
                if memory is None:
                    memory = self.new_memory(
                        keys.shape[-1], tuple(values.shape[1:]),
                        masks.shape[-2:] if self.level == 'image' else None)
                elif tuple(values.shape[1:]) != tuple(memory.value_shape):
                    raise ValueError(f'memory entries hold {tuple(memory.value_shape)} values '
                                     f'(units, classes), this image gives '
                                     f'{tuple(values.shape[1:])}; level=image needs memory '
                                     'images of one size')
                memory.add(keys.cpu(), values.cpu())
                images += 1
        if memory is None or images == 0:
            raise ValueError('the memory dataloader yielded no images: an empty memory cannot '
                             'label anything (check its dataset and data_root)')
        self.memory = memory
        print_log(f'RetrievalSegmentor: memory holds {len(memory)} {self.level} entries '
                  f'({images} images added)', logger='current', level=logging.INFO)
        return memory

    def check_memory(self, memory: PatchMemory, source: str = 'the memory') -> None:
        """Require ``memory`` to be built with this model's backbone, patch, keys and classes."""
        saved = memory.metadata
        self._check_memory_shape(memory.key_dim, memory.value_shape, saved, source)
        for key, expected in self.memory_metadata().items():
            if key == 'classes' and expected is None:
                continue
            if saved.get(key) != expected:
                raise ValueError(f'{source} was built with {key}={saved.get(key)!r}, but this '
                                 f'model has {key}={expected!r}; rebuild the memory with this '
                                 'config and checkpoint (tools/memory.py build)')

    def load_memory(self, directory: str, verify: Optional[bool] = None) -> PatchMemory:
        """Load a saved memory after checking its metadata against this model.

        Args:
            directory (str): The saved memory.
            verify (bool, optional): Check its files' SHA-256 (see
                :meth:`PatchMemory.load`). None: ``memory.verify`` of the
                config, True by default.

        Raises:
            ValueError: A metadata entry, the key size or the value shape
                (patch geometry) differs from this model's (the message names
                the directory and the key), an empty memory, or a corrupted
                file (named).
        """
        if verify is None:
            verify = bool(self.memory_load_cfg.get('verify', True))
        memory = PatchMemory.load(
            directory, expected={**self.memory_metadata(), **self.memory_fields()},
            device=self.memory_cfg.get('device', 'auto'),
            mmap_keys=bool(self.memory_load_cfg.get('mmap_keys', False)), verify=verify)
        self._check_memory_shape(memory.key_dim, memory.value_shape, memory.metadata,
                                 f'memory {memory.source}')
        self.memory = memory
        checked = 'SHA-256 verified' if verify else 'not verified: memory.verify=False'
        print_log(f'RetrievalSegmentor: loaded memory {directory} ({len(memory)} entries, '
                  f'{checked})', logger='current', level=logging.INFO)
        return memory


def _same_size_parts(data: dict) -> List[dict]:
    """A batch as is when its images share one size, else one single-image batch per image."""
    inputs = data['inputs']
    if isinstance(inputs, Tensor) or len({tuple(x.shape[-2:]) for x in inputs}) <= 1:
        return [data]
    return [dict(data, inputs=[x], data_samples=[s])
            for x, s in zip(inputs, data['data_samples'])]


def _jsonable(value: object) -> object:
    """A config value as plain JSON types (tuples become lists)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)

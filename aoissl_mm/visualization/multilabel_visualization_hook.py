"""Validation/test visualization hook that reads two-light buffer pairs."""
import os.path as osp
from typing import Any, Optional, Sequence

import numpy as np
from mmengine.runner import Runner
from mmseg.engine.hooks import SegVisualizationHook
from mmseg.registry import HOOKS
from mmseg.structures import SegDataSample

from ..datasets.io import read_buffer_pair, split_buffer_stem
from ..datasets.transforms.functional import crop, pad_center
from .multilabel_seg_local_visualizer import aoi_display_image


@HOOKS.register_module()
class MultiLabelVisualizationHook(SegVisualizationHook):
    """Draw val/test predictions of 2-channel AOI samples.

    mmseg's :class:`SegVisualizationHook` re-reads ``img_path`` as an RGB
    file, which shows only buffer0 of a two-light sample. This hook reads both
    buffers from the sample's ``buffer_paths`` metainfo with
    :func:`read_buffer_pair`, turns them into the false-colour composite of
    :func:`aoi_display_image` and passes it to the current visualizer (best a
    :class:`MultiLabelSegLocalVisualizer`) under the name
    ``'<mode>_<stem>'``. When the sample was cropped at test time
    (``PadCenterCrop`` / ``PositiveAnchoredRandomCrop`` store ``crop_bbox``)
    and its masks have the crop's size, the buffer pair is zero-padded and
    cropped the same way so that image and masks line up. With
    ``LocalVisBackend`` the drawings end up in
    ``<save_dir>/vis_data/vis_image/<mode>_<stem>_<iter>.png``; mmseg-style
    ``tools/test.py --show-dir DIR`` sets ``draw=True`` and the visualizer's
    ``save_dir``.

    Args:
        draw (bool): Draw at all. Defaults to False.
        interval (int): Draw every ``interval``-th val/test batch.
            Defaults to 50.
        show (bool): Show in a window instead of storing (the visualizer's
            backends are then dropped, as in the parent). Defaults to False.
        wait_time (float): Display time in seconds. Defaults to 0.
        percentiles (Sequence[float]): Stretch of the composite.
            Defaults to (1, 99).
        backend_args (dict, optional): Not supported: buffers are read from
            the local file system. Must be None.

    Raises:
        ValueError: ``backend_args`` given.
    """

    def __init__(self,
                 draw: bool = False,
                 interval: int = 50,
                 show: bool = False,
                 wait_time: float = 0.,
                 percentiles: Sequence[float] = (1.0, 99.0),
                 backend_args: Optional[dict] = None) -> None:
        if backend_args is not None:
            raise ValueError('MultiLabelVisualizationHook: backend_args is not supported; the '
                             'buffer pairs are read from local files with read_buffer_pair')
        super().__init__(draw=draw, interval=interval, show=show, wait_time=wait_time,
                         backend_args=None)
        self.percentiles = tuple(float(p) for p in percentiles)

    @staticmethod
    def _buffer_paths(output: SegDataSample) -> Sequence[str]:
        """The (buffer0, buffer1) paths of a sample; clear error if absent."""
        paths = output.metainfo.get('buffer_paths')
        if paths is None or len(paths) != 2:
            raise KeyError(f'MultiLabelVisualizationHook: sample '
                           f'{output.metainfo.get("img_path", "<unknown image>")} has '
                           f'buffer_paths={paths!r}; expected the metainfo key "buffer_paths" '
                           f'= (buffer0 path, buffer1 path), as AOIDataset sets it (use '
                           f'SegVisualizationHook for RGB datasets)')
        return paths

    @staticmethod
    def _match_crop(pair: np.ndarray, output: SegDataSample) -> np.ndarray:
        """Pad + crop ``pair`` like the test pipeline if the masks are crop-sized.

        Args:
            pair (np.ndarray): H x W x 2 buffer pair as read from disk.
            output (SegDataSample): The sample (``crop_bbox`` metainfo and
                ``pred_sem_seg`` / ``gt_sem_seg``).

        Returns:
            np.ndarray: ``pair`` itself, or its padded crop.
        """
        bbox = output.metainfo.get('crop_bbox')
        field = next((f for f in ('pred_sem_seg', 'gt_sem_seg') if f in output), None)
        if bbox is None or field is None:
            return pair
        mask_hw = tuple(output.get(field).data.shape[-2:])
        y0, y1, x0, x1 = (int(v) for v in bbox)
        crop_hw = (y1 - y0, x1 - x0)
        if mask_hw != crop_hw or mask_hw == tuple(pair.shape[:2]):
            return pair
        padded, _ = pad_center(pair, crop_hw, 0)
        return crop(padded, (y0, y1, x0, x1))

    def _after_iter(self,
                    runner: Runner,
                    batch_idx: int,
                    data_batch: Any,
                    outputs: Sequence[SegDataSample],
                    mode: str = 'val') -> None:
        """Draw every sample of every ``interval``-th val/test batch.

        Args:
            runner (Runner): The runner (``runner.iter`` is the step).
            batch_idx (int): Index of the batch in the loop.
            data_batch (Any): The batch from the dataloader (unused).
            outputs (Sequence[SegDataSample]): Model outputs with
                ``buffer_paths`` metainfo and ``pred_sem_seg`` (and
                ``gt_sem_seg`` when available).
            mode (str): ``'train'``, ``'val'`` or ``'test'``.
        """
        if self.draw is False or mode == 'train':
            return
        if not self.every_n_inner_iters(batch_idx, self.interval):
            return
        for output in outputs:
            path0, path1 = self._buffer_paths(output)
            pair = self._match_crop(read_buffer_pair(path0, path1), output)
            image = aoi_display_image(pair, self.percentiles)
            parsed = split_buffer_stem(path0)
            stem = parsed[0] if parsed is not None else osp.splitext(osp.basename(path0))[0]
            self._visualizer.add_datasample(
                f'{mode}_{stem}',
                image,
                data_sample=output,
                show=self.show,
                wait_time=self.wait_time,
                step=runner.iter)

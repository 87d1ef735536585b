"""Validation/test visualization hook for two-light (2-channel) AOI samples."""
from typing import Any, Optional, Sequence

import cv2
import numpy as np
import torch
from mmengine.runner import Runner
from mmseg.engine.hooks import SegVisualizationHook
from mmseg.registry import HOOKS
from mmseg.structures import SegDataSample

from .multilabel_seg_local_visualizer import aoi_display_image


@HOOKS.register_module()
class MultiLabelVisualizationHook(SegVisualizationHook):
    """Draw val/test predictions of 2-channel AOI samples.

    mmseg's :class:`SegVisualizationHook` re-reads ``img_path`` as an RGB
    file, which shows only buffer0 of a two-light sample. This hook draws the
    2-channel input the model was given — the batch's packed ``inputs``,
    already loaded, padded and cropped by the test pipeline, so image and
    masks line up and nothing is read again from disk — as the false-colour
    composite of :func:`aoi_display_image`, and passes it to the current
    visualizer (best a :class:`MultiLabelSegLocalVisualizer`) under the name
    ``'<mode>_<stem>'`` (``stem`` metainfo, set by the dataset). With
    test-time augmentation the first view is drawn. If the masks were
    resized back to another size than the input (a ``Resize`` in the test
    pipeline), the composite is resized to the masks for display. With
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
        backend_args (dict, optional): Not used (nothing is read from
            disk). Must be None.

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
                             'hook draws the packed inputs and reads no file')
        super().__init__(draw=draw, interval=interval, show=show, wait_time=wait_time,
                         backend_args=None)
        self.percentiles = tuple(float(p) for p in percentiles)

    @staticmethod
    def _input_pair(data_batch: Any, index: int, output: SegDataSample) -> np.ndarray:
        """The H x W x 2 input of sample ``index`` of the batch, as the model saw it.

        Args:
            data_batch (Any): The dataloader's batch (``inputs``: a list of
                (2, H, W) tensors, or of lists of them under TTA).
            index (int): Position of the sample in the batch.
            output (SegDataSample): Its prediction (for the mask size and
                the error message).

        Returns:
            np.ndarray: H x W x 2, resized (nearest) to the masks if needed.

        Raises:
            KeyError: The batch holds no ``inputs`` for the sample.
            ValueError: The input does not have 2 channels.
        """
        inputs = data_batch.get('inputs') if isinstance(data_batch, dict) else None
        name = output.metainfo.get('img_path', '<unknown image>')
        if inputs is None or index >= len(inputs):
            raise KeyError(f'MultiLabelVisualizationHook: no packed "inputs" for sample {name} '
                           f'in the data batch (expected the dataloader batch of '
                           f'PackMultiLabelSegInputs)')
        image = inputs[index]
        if isinstance(image, (list, tuple)):  # test-time augmentation: the first view
            image = image[0]
        if torch.is_tensor(image):
            image = image.detach().cpu().numpy()
        if image.ndim != 3 or image.shape[0] != 2:
            raise ValueError(f'MultiLabelVisualizationHook: sample {name} has an input of shape '
                             f'{tuple(image.shape)}; expected (2, H, W) (two light buffers)')
        pair = np.ascontiguousarray(image.transpose(1, 2, 0))
        field = next((f for f in ('pred_sem_seg', 'gt_sem_seg') if f in output), None)
        if field is not None:
            mask_hw = tuple(output.get(field).data.shape[-2:])
            if mask_hw != pair.shape[:2]:
                pair = cv2.resize(pair, mask_hw[::-1], interpolation=cv2.INTER_NEAREST)
        return pair

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
            data_batch (Any): The batch from the dataloader (its packed
                2-channel ``inputs`` are drawn).
            outputs (Sequence[SegDataSample]): Model outputs with ``stem``
                metainfo and ``pred_sem_seg`` (and ``gt_sem_seg`` when
                available).
            mode (str): ``'train'``, ``'val'`` or ``'test'``.
        """
        if self.draw is False or mode == 'train':
            return
        if not self.every_n_inner_iters(batch_idx, self.interval):
            return
        for index, output in enumerate(outputs):
            image = aoi_display_image(self._input_pair(data_batch, index, output),
                                      self.percentiles)
            stem = output.metainfo.get('stem', f'{batch_idx}_{index}')
            self._visualizer.add_datasample(
                f'{mode}_{stem}',
                image,
                data_sample=output,
                show=self.show,
                wait_time=self.wait_time,
                step=runner.iter)

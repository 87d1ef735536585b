"""Visualizer for overlapping class masks on 2-channel (two-light) AOI images."""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from mmengine.dist import master_only
from mmengine.structures import PixelData
from mmseg.registry import VISUALIZERS
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer

from ..datasets.io import write_image
from ..datasets.metainfo import AOI_CLASSES, AOI_PALETTE

DISPLAY_MODES = ('composite', 'side_by_side')


def _stretch(channel: np.ndarray, percentiles: Tuple[float, float],
             full_range: Optional[float]) -> np.ndarray:
    """Map ``channel`` linearly so its ``percentiles`` become 0 and 1, clipped.

    A flat channel (both percentiles equal) is scaled by ``full_range`` (the
    dtype's maximum for integers) or, for floats, taken as already in [0, 1].
    """
    lo, hi = np.percentile(channel, percentiles)
    if hi > lo:
        out = (channel - lo) / (hi - lo)
    elif full_range is not None:
        out = channel / full_range
    else:
        out = channel
    return np.clip(out, 0.0, 1.0)


def aoi_display_image(img: np.ndarray,
                      percentiles: Sequence[float] = (1.0, 99.0)) -> np.ndarray:
    """False-colour RGB composite of a two-light buffer pair.

    ``R = buffer0``, ``G = buffer1``, ``B = (buffer0 + buffer1) / 2``; each of
    the three is stretched on its own so that its ``percentiles[0]``
    percentile maps to 0 and its ``percentiles[1]`` percentile to 255
    (clipped, rounded). A flat channel is scaled by the dtype's range.

    Args:
        img (np.ndarray): H x W x 2 array (uint8, uint16 or float), channel 0
            = buffer0, channel 1 = buffer1 (as :func:`read_buffer_pair`
            returns).
        percentiles (Sequence[float]): Low and high percentile of the
            stretch, ``0 <= low < high <= 100``. Defaults to (1, 99).

    Returns:
        np.ndarray: H x W x 3 uint8 RGB image.

    Raises:
        ValueError: ``img`` is not H x W x 2 numeric, or bad percentiles.
    """
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 2:
        raise ValueError(f'aoi_display_image: expected an H x W x 2 buffer pair '
                         f'(buffer0, buffer1), got shape {img.shape}')
    if img.dtype == np.bool_ or not (np.issubdtype(img.dtype, np.integer)
                                     or np.issubdtype(img.dtype, np.floating)):
        raise ValueError(f'aoi_display_image: unsupported dtype {img.dtype} '
                         f'(expected uint8, uint16 or float)')
    low, high = (float(p) for p in percentiles)
    if not 0.0 <= low < high <= 100.0:
        raise ValueError(f'aoi_display_image: percentiles must satisfy 0 <= low < high <= 100, '
                         f'got {tuple(percentiles)}')
    full_range = float(np.iinfo(img.dtype).max) if np.issubdtype(img.dtype, np.integer) else None
    x = img.astype(np.float64)
    planes = (x[..., 0], x[..., 1], (x[..., 0] + x[..., 1]) / 2.0)
    out = np.stack([_stretch(p, (low, high), full_range) for p in planes], axis=-1)
    return np.rint(out * 255.0).astype(np.uint8)


@VISUALIZERS.register_module()
class MultiLabelSegLocalVisualizer(SegLocalVisualizer):
    """Draw multi-label (overlapping) masks over two-light AOI images.

    Every class channel is drawn as a translucent fill plus an opaque
    contour in its palette colour. Where several classes overlap, the fill is
    the mean of their colours, so a wire over a ball shows both colours;
    contours keep each class's outline visible. Ground truth (left) and
    prediction (right) are placed side by side, and a legend strip with the
    class names and colours is appended below.

    The image given to :meth:`add_datasample` is either the raw H x W x 2
    buffer pair (turned into the :func:`aoi_display_image` composite) or an
    H x W x 3 RGB display image such as that composite.

    Args:
        name (str): Instance name. Defaults to ``'visualizer'``.
        image (np.ndarray, optional): Initial RGB image. Defaults to None.
        vis_backends (list[dict], optional): Visual backend configs.
            Defaults to None.
        save_dir (str, optional): Folder of the storage backends.
            Defaults to None.
        classes (Sequence[str], optional): Class names; default the AOI
            classes (when ``dataset_name`` is not given either).
        palette (Sequence[Sequence[int]], optional): RGB colour per class;
            default the AOI palette (with the default classes).
        dataset_name (str, optional): mmseg dataset name to take classes and
            palette from. Defaults to None.
        alpha (float): Opacity of the fill, in [0, 1]. Defaults to 0.5.
        display (str): ``'composite'``: the panels are the false-colour
            composite with the overlays. ``'side_by_side'``: buffer0 and
            buffer1 as grey images (the stretched R and G channels of the
            composite) are placed left of the overlay panels, which are drawn
            on the composite. Defaults to ``'composite'``.
        contour_thickness (int): Contour line width in pixels. Defaults to 1.
        percentiles (Sequence[float]): Stretch of :func:`aoi_display_image`
            for raw 2-channel input. Defaults to (1, 99).
        **kwargs: Passed to :class:`mmengine.visualization.Visualizer`.

    Raises:
        ValueError: Unknown ``display``, ``alpha`` outside [0, 1] or
            ``contour_thickness`` < 1.
    """

    def __init__(self,
                 name: str = 'visualizer',
                 image: Optional[np.ndarray] = None,
                 vis_backends: Optional[List[Dict]] = None,
                 save_dir: Optional[str] = None,
                 classes: Optional[Sequence[str]] = None,
                 palette: Optional[Sequence[Sequence[int]]] = None,
                 dataset_name: Optional[str] = None,
                 alpha: float = 0.5,
                 display: str = 'composite',
                 contour_thickness: int = 1,
                 percentiles: Sequence[float] = (1.0, 99.0),
                 **kwargs: Any) -> None:
        if display not in DISPLAY_MODES:
            raise ValueError(f'MultiLabelSegLocalVisualizer: display={display!r}; expected one '
                             f'of {DISPLAY_MODES}')
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f'MultiLabelSegLocalVisualizer: alpha must be in [0, 1], got {alpha}')
        if contour_thickness < 1:
            raise ValueError(f'MultiLabelSegLocalVisualizer: contour_thickness must be >= 1, '
                             f'got {contour_thickness}')
        if dataset_name is None and classes is None:
            classes = list(AOI_CLASSES)
            if palette is None:
                palette = [list(c) for c in AOI_PALETTE]
        # SegLocalVisualizer.__init__ passes (palette, classes) to set_dataset_meta in
        # swapped order (mmseg 1.2.2), so set the meta ourselves afterwards
        super().__init__(name=name, image=image, vis_backends=vis_backends, save_dir=save_dir,
                         dataset_name=dataset_name, alpha=alpha, **kwargs)
        self.set_dataset_meta(list(classes) if classes is not None else None,
                              [list(c) for c in palette] if palette is not None else None,
                              dataset_name)
        self.display = display
        self.contour_thickness = int(contour_thickness)
        self.percentiles = tuple(float(p) for p in percentiles)

    # ------------------------------------------------------------------
    # drawing
    # ------------------------------------------------------------------
    def _draw_sem_seg(self,
                      image: np.ndarray,
                      sem_seg: PixelData,
                      classes: Optional[Sequence[str]],
                      palette: Optional[Sequence[Sequence[int]]],
                      with_labels: Optional[bool] = True) -> np.ndarray:
        """Draw a (C, H, W) multi-label map: translucent fills and contours.

        Values equal to 1 are drawn; 0 and ignore values (255) are not. A map
        whose H x W differs from the image is resized (nearest) to it.

        Args:
            image (np.ndarray): H x W x 3 uint8 RGB image to draw on.
            sem_seg (PixelData): ``data`` of shape (C, H, W), C = number of
                classes.
            classes (Sequence[str], optional): Class names (length C).
            palette (Sequence[Sequence[int]], optional): RGB colour per class.
            with_labels (bool, optional): Kept for the parent's signature;
                the class names are shown by the legend strip that
                :meth:`add_datasample` appends.

        Returns:
            np.ndarray: The drawn H x W x 3 uint8 RGB image.

        Raises:
            ValueError: Classes/palette missing or of different lengths, or
                the map is not (C, H, W) with C = the number of classes.
        """
        if not classes or not palette or len(classes) != len(palette):
            raise ValueError(f'MultiLabelSegLocalVisualizer: dataset_meta needs "classes" and '
                             f'"palette" of equal length, got {classes!r} and {palette!r}')
        data = sem_seg.cpu().data
        data = data.numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
        if data.ndim != 3 or data.shape[0] != len(classes):
            raise ValueError(f'MultiLabelSegLocalVisualizer: segmentation map of shape '
                             f'{data.shape}; expected (C, H, W) with C = {len(classes)} '
                             f'classes {tuple(classes)}')
        masks = (data == 1).astype(np.uint8)
        height, width = image.shape[:2]
        if masks.shape[1:] != (height, width):
            masks = np.stack([
                cv2.resize(m, (width, height), interpolation=cv2.INTER_NEAREST) for m in masks
            ])
        colours = np.asarray(palette, dtype=np.float64)[:, :3]
        count = masks.sum(axis=0).astype(np.float64)
        colour_sum = np.einsum('chw,ck->hwk', masks.astype(np.float64), colours)
        covered = count > 0
        fill = colour_sum[covered] / count[covered][:, None]
        drawn = image.astype(np.float64)
        drawn[covered] = drawn[covered] * (1.0 - self.alpha) + fill * self.alpha
        drawn = np.ascontiguousarray(np.clip(np.rint(drawn), 0, 255).astype(np.uint8))
        for mask, colour in zip(masks, palette):
            if not mask.any():
                continue
            contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(drawn, contours, -1, tuple(int(v) for v in colour[:3]),
                             self.contour_thickness)
        self.set_image(drawn)
        return drawn

    @staticmethod
    def _draw_legend(width: int, classes: Sequence[str],
                     palette: Sequence[Sequence[int]]) -> np.ndarray:
        """A dark strip ``width`` pixels wide with a colour swatch + name per class.

        Entries are laid out left to right and wrap onto new rows; the font
        grows with the width (text wider than a very narrow strip is cut).

        Args:
            width (int): Strip width (the drawn image's width).
            classes (Sequence[str]): Class names.
            palette (Sequence[Sequence[int]]): RGB colour per class.

        Returns:
            np.ndarray: (rows * row height) x ``width`` x 3 uint8 RGB strip.
        """
        font = cv2.FONT_HERSHEY_SIMPLEX
        scale = float(np.clip(width / 1000.0, 0.35, 0.8))
        thickness = 1 if scale < 0.6 else 2
        text_h = cv2.getTextSize('Ag', font, scale, thickness)[0][1]
        pad = max(2, text_h // 3)
        row_h = text_h + 3 * pad
        swatch = text_h
        entries = []
        for name, colour in zip(classes, palette):
            text_w = cv2.getTextSize(str(name), font, scale, thickness)[0][0]
            entries.append((str(name), colour, swatch + pad + text_w + 3 * pad))
        positions = []
        x, row = pad, 0
        for name, colour, entry_w in entries:
            if x > pad and x + entry_w > width:
                x, row = pad, row + 1
            positions.append((x, row, name, colour))
            x += entry_w
        strip = np.full(((row + 1) * row_h, width, 3), 32, dtype=np.uint8)
        for x, row, name, colour in positions:
            top = row * row_h + pad
            cv2.rectangle(strip, (x, top), (x + swatch - 1, top + swatch - 1),
                          tuple(int(v) for v in colour[:3]), -1)
            cv2.putText(strip, name, (x + swatch + pad, top + text_h), font, scale,
                        (255, 255, 255), thickness, cv2.LINE_AA)
        return strip

    def _display_images(self, image: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (RGB composite, grey buffer0, grey buffer1) for ``image``.

        Args:
            image (np.ndarray): H x W x 2 raw buffer pair, or H x W x 3 RGB
                display image (whose R and G channels serve as the buffers).

        Raises:
            ValueError: Any other shape, or a 3-channel image not uint8.
        """
        image = np.asarray(image)
        if image.ndim == 3 and image.shape[2] == 2:
            composite = aoi_display_image(image, self.percentiles)
        elif image.ndim == 3 and image.shape[2] == 3:
            if image.dtype != np.uint8:
                raise ValueError(f'MultiLabelSegLocalVisualizer: a 3-channel display image '
                                 f'must be uint8 RGB, got {image.dtype}; pass the raw H x W x 2 '
                                 f'buffer pair instead')
            composite = np.ascontiguousarray(image)
        else:
            raise ValueError(f'MultiLabelSegLocalVisualizer: image of shape {image.shape}; '
                             f'expected the H x W x 2 buffer pair or an H x W x 3 uint8 RGB '
                             f'composite (aoi_display_image)')
        grey0 = np.repeat(composite[..., :1], 3, axis=2)
        grey1 = np.repeat(composite[..., 1:2], 3, axis=2)
        return composite, grey0, grey1

    @master_only
    def add_datasample(self,
                       name: str,
                       image: np.ndarray,
                       data_sample: Optional[SegDataSample] = None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: float = 0,
                       out_file: Optional[str] = None,
                       step: int = 0,
                       with_labels: Optional[bool] = True) -> None:
        """Draw ground truth and prediction of one sample and save/show it.

        Layout, left to right: (``display='side_by_side'`` only) grey
        buffer0, grey buffer1; then ground truth and prediction drawn on the
        composite (those present in ``data_sample`` and enabled). Without
        any mask the composite itself is shown. With ``with_labels`` a legend
        strip is appended below.

        Args:
            name (str): Image identifier (the file name of the saved image).
            image (np.ndarray): H x W x 2 buffer pair or H x W x 3 uint8 RGB
                composite.
            data_sample (SegDataSample, optional): With ``gt_sem_seg`` and/or
                ``pred_sem_seg`` of shape (C, H, W). Defaults to None.
            draw_gt (bool): Draw the ground truth. Defaults to True.
            draw_pred (bool): Draw the prediction. Defaults to True.
            show (bool): Show in a window instead of the backends.
                Defaults to False.
            wait_time (float): Display time in seconds. Defaults to 0.
            out_file (str, optional): Write the drawing there (atomically)
                instead of to the backends. Defaults to None.
            step (int): Global step for the backends. Defaults to 0.
            with_labels (bool, optional): Append the class legend.
                Defaults to True.
        """
        classes = self.dataset_meta.get('classes', None)
        palette = self.dataset_meta.get('palette', None)
        composite, grey0, grey1 = self._display_images(image)

        overlays = []
        if data_sample is not None:
            if draw_gt and 'gt_sem_seg' in data_sample:
                overlays.append(self._draw_sem_seg(composite, data_sample.gt_sem_seg,
                                                   classes, palette, with_labels))
            if draw_pred and 'pred_sem_seg' in data_sample:
                overlays.append(self._draw_sem_seg(composite, data_sample.pred_sem_seg,
                                                   classes, palette, with_labels))
        panels = [grey0, grey1] if self.display == 'side_by_side' else []
        panels += overlays if overlays else [composite]
        drawn_img = np.concatenate(panels, axis=1)
        if with_labels and overlays:
            legend = self._draw_legend(drawn_img.shape[1], classes, palette)
            drawn_img = np.concatenate([drawn_img, legend], axis=0)
        self.set_image(drawn_img)

        if show:
            self.show(drawn_img, win_name=name, wait_time=wait_time)
        if out_file is not None:
            write_image(out_file, cv2.cvtColor(drawn_img, cv2.COLOR_RGB2BGR))
        else:
            self.add_image(name, drawn_img, step)

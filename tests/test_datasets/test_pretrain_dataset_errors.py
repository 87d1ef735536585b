"""AOIPretrainDataset on a pretraining folder without buffer pairs: a clear error naming it.

(AOIDataset's empty split folder is tested in test_io_dataset.py; the pretraining dataset
scans its folder recursively, so unpaired files in sub-folders count too.)"""
import os
import os.path as osp
import re

import cv2
import numpy as np
import pytest

from aoissl_mm.datasets import AOIPretrainDataset
from aoissl_mm.datasets.io import AOIDataError

NO_PAIRS = r'no <stem>_buffer0/<stem>_buffer1 image pairs found in '


def _png(path) -> None:
    os.makedirs(osp.dirname(str(path)), exist_ok=True)
    assert cv2.imwrite(str(path), np.full((8, 8), 7, np.uint8))


def _files(root) -> list:
    return sorted(osp.relpath(osp.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


@pytest.mark.parametrize('data_prefix', ['pretrain', dict(img_path='pretrain')])
def test_empty_pretrain_folder(tmp_path, data_prefix, pretrain_scope):
    folder = tmp_path / 'pretrain'
    folder.mkdir()
    with pytest.raises(AOIDataError, match=NO_PAIRS + re.escape(str(folder))):
        AOIPretrainDataset(data_root=str(tmp_path), data_prefix=data_prefix)
    assert _files(str(tmp_path)) == []  # nothing generated or written


def test_folder_with_other_files_or_pairs_only_in_label_folders(tmp_path, pretrain_scope):
    folder = tmp_path / 'pretrain'
    _png(folder / 'notes_buffer.png')  # no _buffer0/_buffer1 suffix
    _png(folder / 'a.png')
    _png(folder / 'masks' / 'x_buffer0.png')  # label folders are skipped
    _png(folder / 'masks' / 'x_buffer1.png')
    with pytest.raises(AOIDataError, match=NO_PAIRS + re.escape(str(folder))):
        AOIPretrainDataset(data_root=str(tmp_path))


@pytest.mark.parametrize('layout', [
    ['a_buffer0.png', 'b_buffer0.png'],  # only buffer0 files
    ['famA/a_buffer0.png', 'famA/deeper/b_buffer0.png'],  # ... in sub-folders
    ['famA/a_buffer0.png', 'famB/a_buffer1.png'],  # the partner is in another folder
])
def test_folder_with_only_unpaired_buffers(tmp_path, layout, pretrain_scope):
    folder = tmp_path / 'pretrain'
    for name in layout:
        _png(folder / name)
    before = _files(str(tmp_path))
    with pytest.raises(AOIDataError) as err:
        AOIPretrainDataset(data_root=str(tmp_path), data_prefix='pretrain')
    msg = str(err.value)
    # the first unpaired file in sorted order, with its full path (the folder), and the partner
    first = sorted(layout)[0]
    stem, idx = first[:-len('_bufferN.png')], int(first[-len('N.png')])
    assert msg.startswith(str(folder / first) + ': '), msg
    assert f'no matching {osp.basename(stem)}_buffer{1 - idx}' in msg, msg
    assert _files(str(tmp_path)) == before


def test_missing_pretrain_folder(tmp_path, pretrain_scope):
    with pytest.raises(AOIDataError, match='image folder not found: '
                       + re.escape(str(tmp_path / 'unlabelled'))):
        AOIPretrainDataset(data_root=str(tmp_path), data_prefix='unlabelled')

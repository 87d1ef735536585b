"""Pinned SHA-256 digests of synthetic benchmark output (guards "no pixel changed").

The digests were computed with the generator as it stood before the synthetic
module became a package (``aoissl_mm/datasets/synthetic.py`` at commit
bce2307) and must never change through a refactoring. Each digest covers the
decoded pixels of a PNG (dtype, shape and raw bytes, read back unchanged), so
a different PNG encoder or compression level does not matter, but every pixel
value does; the manifest is compared as canonical (key-sorted) JSON.

If a digest changes on purpose (the generator's output is meant to change),
recompute the tables and say so in the commit message. A changed NumPy random
stream or OpenCV arithmetic would also change them.
"""
import hashlib
import json
import os
import os.path as osp
from typing import Dict

import cv2
import pytest

from aoissl_mm.datasets.synthetic import generate_synthetic_aoi

SIZE_RANGE = (160, 224)

#: Two families, two train, one val and one pretrain image, seed 5.
FAMILIES_KW = dict(num_train=2, num_val=1, num_test=0, num_pretrain=1, num_families=2, seed=5)
FAMILIES_DIGESTS = {
    'synthetic_aoi.json': '0244c1c5c74e90cc1b4ce352aa72953e23722a3166893a6dbcea0484f9597453',
    'images/train/fam00_train0000_buffer0.png':
        'b2f69264ff5cbda921637cde361375abb3371e880fa649f26a7e5b54b428a8cb',
    'images/train/fam00_train0000_buffer1.png':
        'd90974916afc333507fa098d86df363d1b999ca8c7a960b98a407ff6cf53f60f',
    'images/train/fam01_train0001_buffer0.png':
        '853bd46ee6b68ff156160e116d484d1fafb4a06697b3d7c664fa7f98cbe30e6f',
    'images/train/fam01_train0001_buffer1.png':
        '620944a31063bbaef9462d29a53f5a7d0ec106a5cc28fac9a9b179cc678072b0',
    'images/val/fam00_val0000_buffer0.png':
        'a010fc3d13c049739baedbbcd597ed394e001b5898f6672c578a639017e504a5',
    'images/val/fam00_val0000_buffer1.png':
        'c879a61e7af3c00c1398fb73be83cad98be667b0e82940427fad8d12676b282e',
    'labels/train/fam00_train0000.png':
        '285006d4211e3e80fdbcfcd4acac06578d358df485c37e7d68f1d9275f890cf6',
    'labels/train/fam01_train0001.png':
        '3dc4d94c3828e902a5b61be83d71b33c4a54a1775e5a7e295a2576200646b7b3',
    'labels/val/fam00_val0000.png':
        '712a9702cf99c8adea60b26fd4b4e8449e33786016d0dbc8eb31aa859daf84a5',
    'pretrain/fam00/fam00_pre0000_buffer0.png':
        'f3ee038832688c89432b4d28d6bf70d92d443166458d6899ad1f464e2416a93f',
    'pretrain/fam00/fam00_pre0000_buffer1.png':
        '2ab6ac2f779d1eea3fe926e5c1ee456fc61e39dc713d7f8aa46c14eb3f676aa4',
}

#: The single-device mode: one train and one test image, seed 2.
SINGLE_KW = dict(num_train=1, num_val=0, num_test=1, num_pretrain=0, single_device=True, seed=2)
SINGLE_DIGESTS = {
    'synthetic_aoi.json': 'd64cef5ae03400e61907fed577e8608d855c50e1b148a2862e9634e27abcb905',
    'images/test/fam00_test0000_buffer0.png':
        '920c7a6619641256043628bce44489ef3ed54f56603e5accb3323c780238c702',
    'images/test/fam00_test0000_buffer1.png':
        '4eb172ce329f9eb41ef35ab4e710267e46bc3c7976877403e9d909d76c99a684',
    'images/train/fam00_train0000_buffer0.png':
        'cf8b9cbdc3eb4134676a7113eb391bf1181a5b840ed0fa4974a363fc0538f950',
    'images/train/fam00_train0000_buffer1.png':
        'f0a1815da81561aaeea2ff07830af67f29952df408393ca3055fecf879851b24',
    'labels/test/fam00_test0000.png':
        '842fc4c6f5d5aa501b0a59e4fd041437ac464362c8bf3d120ce50871cccdd788',
    'labels/train/fam00_train0000.png':
        '339e3cfd3f2856dbd667c2a5e09cbc2740759151f1ad04c1d157e1146e3d21c5',
}


def _digest(path: str) -> str:
    """SHA-256 of a PNG's decoded pixels, or of a JSON file's canonical form."""
    if path.endswith('.json'):
        with open(path, encoding='utf-8') as f:
            canonical = json.dumps(json.load(f), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()
    arr = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise OSError(f'cannot read {path}')
    return hashlib.sha256(f'{arr.dtype}{arr.shape}'.encode() + arr.tobytes()).hexdigest()


def _tree_digests(root: str) -> Dict[str, str]:
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = osp.join(folder, name)
            out[osp.relpath(path, root).replace(os.sep, '/')] = _digest(path)
    return out


@pytest.mark.parametrize('kwargs,expected', [(FAMILIES_KW, FAMILIES_DIGESTS),
                                             (SINGLE_KW, SINGLE_DIGESTS)],
                         ids=['families', 'single_device'])
def test_generated_files_match_pinned_digests(tmp_path, kwargs, expected):
    root = str(tmp_path / 'syn')
    generate_synthetic_aoi(root, size_range=SIZE_RANGE, progress=False, **kwargs)
    got = _tree_digests(root)
    assert sorted(got) == sorted(expected)
    changed = sorted(k for k in expected if got[k] != expected[k])
    assert not changed, f'generator output changed for: {changed}'

"""tools/test.py and tools/memory.py on a retrieval config, checked against a brute-force
label transfer computed from the image and label FILES (spec §8.2, Eq. 5)."""
import glob
import json
import os.path as osp
import runpy
import sys

import numpy as np
import pytest
import torch

from aoissl_mm.datasets.io import find_buffer_pairs, read_buffer_pair, read_multilabel_mask

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CROP, P, C = 64, 16, 4
CFG = osp.join(ROOT, 'configs', 'retrieval', 'retrieval-patch-sim_vit-tiny_aoi-512.py')


def _run(script, args, monkeypatch):
    monkeypatch.setattr(sys, 'argv', [script] + args)
    runpy.run_path(osp.join(ROOT, 'tools', script), run_name='__main__')


@pytest.fixture(scope='module')
def setup(tmp_path_factory, tiny_retrieval_config):
    tmp = tmp_path_factory.mktemp('retrieval')
    data_root, path, cfg = tiny_retrieval_config(tmp, CROP, k=[3, 5, 2, 4],
                                                 threshold=[0.3, 0.5, 0.2, 0.4])
    # a "checkpoint" holding a backbone, as an SSL run would write it (plus a decoder)
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    backbone = MODELS.build(cfg.model.backbone)
    state = {f'backbone.{k}': v for k, v in backbone.state_dict().items()}
    state['neck.decoder_pred.weight'] = torch.zeros(3, 3)
    ckpt = str(tmp / 'ssl.pth')
    torch.save(dict(state_dict=state, meta=dict(iter=1)), ckpt)
    return tmp, data_root, path, ckpt


def _pad_center_crop(arr):
    """(H, W, ...) zero-padded evenly (odd extra bottom/right), then centre-cropped to CROP."""
    h, w = arr.shape[:2]
    ph, pw = max(CROP - h, 0), max(CROP - w, 0)
    pad = [(ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)] + [(0, 0)] * (arr.ndim - 2)
    arr = np.pad(arr, pad)
    h, w = arr.shape[:2]
    y, x = (h - CROP) // 2, (w - CROP) // 2
    return arr[y:y + CROP, x:x + CROP]


def _load_split(data_root, split):
    imgs, masks, stems = [], [], []
    for stem, p0, p1 in sorted(find_buffer_pairs(osp.join(data_root, 'images', split))):
        imgs.append(_pad_center_crop(read_buffer_pair(p0, p1)))
        masks.append(_pad_center_crop(read_multilabel_mask(
            osp.join(data_root, 'labels', split, f'{stem}.png'), C)))
        stems.append(stem)
    return np.stack(imgs), np.stack(masks), stems


def _keys(model, imgs):
    mean = np.array([45.42, 59.82])
    std = np.array([56.70, 69.03])
    x = torch.from_numpy(((imgs - mean) / std).astype(np.float32)).permute(0, 3, 1, 2)
    return model.extract_feat(x).double().numpy()


def _patches(mask):
    """(H, W, C) -> (N, p*p, C), row-major tokens, by slicing."""
    return np.stack([mask[r:r + P, c:c + P].reshape(-1, C)
                     for r in range(0, mask.shape[0], P) for c in range(0, mask.shape[1], P)])


def _expected_masks(model, data_root):
    mem_imgs, mem_masks, _ = _load_split(data_root, 'train')
    q_imgs, _, stems = _load_split(data_root, 'test')
    mem_keys = _keys(model, mem_imgs).reshape(-1, 384)
    mem_vals = np.concatenate([_patches(m) for m in mem_masks]).astype(np.float64)
    q_keys = _keys(model, q_imgs)
    out = {}
    for b, stem in enumerate(stems):
        sims = np.minimum(q_keys[b] @ mem_keys.T, 1.0)
        scores = np.zeros((CROP, CROP, C))
        for t in range(sims.shape[0]):
            order = np.argsort(-sims[t], kind='stable')
            r, c = divmod(t, CROP // P)
            for cls, k in enumerate(model.ks):
                w = 1.0 / (1.0 - sims[t, order[:k]] + 1e-8)
                w /= w.sum()
                patch = (w[:, None] * mem_vals[order[:k], :, cls]).sum(0).reshape(P, P)
                scores[r * P:(r + 1) * P, c * P:(c + 1) * P, cls] = patch
        out[stem] = scores
    return out


def test_test_py_equals_brute_force_from_files(setup, monkeypatch):
    tmp, data_root, cfg_path, ckpt = setup
    work, out, mem = str(tmp / 'work'), str(tmp / 'out'), str(tmp / 'mem')
    _run('test.py', [cfg_path, ckpt, '--work-dir', work, '--out', out,
                     '--show-dir', str(tmp / 'show'), '--cfg-options',
                     f'custom_hooks.0.save_to={mem}'], monkeypatch)
    results = [json.load(open(f)) for f in glob.glob(osp.join(work, '*', '*.json'))]
    assert any('IoU.wire' in r and 'mIoU' in r for r in results)
    assert len(glob.glob(osp.join(str(tmp / 'show'), '**', '*.png'), recursive=True)) == 2
    from aoissl_mm.apis import init_retrieval_model
    model, _ = init_retrieval_model(cfg_path, ckpt)
    thr = np.array([0.3, 0.5, 0.2, 0.4])
    expected = _expected_masks(model, data_root)
    assert len(expected) == 2
    for stem, scores in expected.items():
        pred = read_multilabel_mask(osp.join(out, f'{stem}.png'), C)
        away = np.abs(scores - thr) > 1e-4
        np.testing.assert_array_equal(pred[away], (scores > thr)[away].astype(np.uint8))
    # the saved memory: every patch of the 3 training crops, metadata of this model
    with open(osp.join(mem, 'memory.json')) as f:
        meta = json.load(f)
    text = json.dumps(meta)
    assert '"patch_size": 16' in text and 'backbone_digest' in text and 'wire' in text


def test_memory_tool_build_add_info_and_test_with_saved_memory(setup, monkeypatch, capsys):
    tmp, data_root, cfg_path, ckpt = setup
    mem = str(tmp / 'mem2')
    _run('memory.py', ['build', cfg_path, ckpt, '--out', mem], monkeypatch)
    assert 'built' in capsys.readouterr().out
    per_image = (CROP // P)**2
    from aoissl_mm.models.retrieval import PatchMemory
    assert len(PatchMemory.load(mem)) == 3 * per_image
    # a "new device": another root in the AOI layout, its 2 test images added
    _run('memory.py', ['add', mem, cfg_path, ckpt, '--data-root', data_root, '--split', 'test'],
         monkeypatch)
    assert f'added {2 * per_image} entries' in capsys.readouterr().out
    assert len(PatchMemory.load(mem)) == 5 * per_image
    _run('memory.py', ['info', mem], monkeypatch)
    assert str(5 * per_image) in capsys.readouterr().out
    # evaluating with the saved memory: a query that is in the memory is labelled exactly
    work, out = str(tmp / 'work2'), str(tmp / 'out2')
    _run('test.py', [cfg_path, ckpt, '--work-dir', work, '--out', out, '--cfg-options',
                     f'custom_hooks.0.load_from={mem}', 'model.k=1'], monkeypatch)
    _, masks, stems = _load_split(data_root, 'test')
    for stem, mask in zip(stems, masks):
        pred = read_multilabel_mask(osp.join(out, f'{stem}.png'), C)
        np.testing.assert_array_equal(pred, mask)


def test_wrong_backbone_checkpoint_and_missing_checkpoint(setup, monkeypatch, tmp_path):
    _, _, cfg_path, ckpt = setup
    bad = str(tmp_path / 'bad.pth')
    torch.save(dict(state_dict={'backbone.cls_token': torch.zeros(1, 1, 384)}), bad)
    with pytest.raises(ValueError, match='missing in checkpoint'):
        _run('test.py', [cfg_path, bad, '--work-dir', str(tmp_path / 'w')], monkeypatch)
    with pytest.raises(ValueError, match='a checkpoint is required'):
        _run('test.py', [cfg_path, '--work-dir', str(tmp_path / 'w')], monkeypatch)
    # a memory built with other weights is refused, naming the key
    mem = str(tmp_path / 'mem')
    _run('memory.py', ['build', cfg_path, ckpt, '--out', mem], monkeypatch)
    state = torch.load(ckpt, weights_only=True)['state_dict']
    state['backbone.cls_token'] = state['backbone.cls_token'] + 1
    other = str(tmp_path / 'other.pth')
    torch.save(dict(state_dict=state), other)
    with pytest.raises(ValueError, match='backbone_digest'):
        _run('test.py', [cfg_path, other, '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                         f'custom_hooks.0.load_from={mem}'], monkeypatch)

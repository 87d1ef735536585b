"""tools/test.py and tools/memory.py on a retrieval config, checked against a brute-force
label transfer computed from the image and label FILES (spec §8.2, Eq. 5)."""
import glob
import json
import os
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


def _log_text(work_dir):
    return '\n'.join(open(f).read() for f in glob.glob(osp.join(work_dir, '*', '*.log')))


def test_test_py_without_checkpoint_loads_the_init_cfg_backbone(setup, monkeypatch, tmp_path):
    """mmengine's Runner.test() never calls init_weights(): tools/test.py must apply the
    backbone's init_cfg itself. Its checkpoint has cls_token = 7.0; the memory built before
    evaluation must come from exactly those weights (reference: the same file given to
    tools/test.py's loader explicitly as the checkpoint), and the log must say so."""
    from mmengine.config import Config

    from aoissl_mm.apis import init_retrieval_model
    _, _, cfg_path, ckpt = setup
    state = {k: v for k, v in torch.load(ckpt, weights_only=True)['state_dict'].items()
             if k.startswith('backbone.')}
    state['backbone.cls_token'] = torch.full_like(state['backbone.cls_token'], 7.0)
    init = str(tmp_path / 'init.pth')
    torch.save(dict(state_dict=state), init)
    cfg = Config.fromfile(cfg_path)
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=init, prefix='backbone.')
    init_cfg_path = str(tmp_path / 'retrieval_init_cfg.py')
    cfg.dump(init_cfg_path)
    work, mem = str(tmp_path / 'work'), str(tmp_path / 'mem')
    _run('test.py', [init_cfg_path, '--work-dir', work, '--cfg-options',
                     f'custom_hooks.0.save_to={mem}'], monkeypatch)
    reference, _ = init_retrieval_model(cfg_path, init)  # explicit checkpoint, no init_cfg
    assert bool((reference.backbone.cls_token == 7.0).all())
    with open(osp.join(mem, 'memory.json')) as f:
        digest = json.load(f)['metadata']['backbone_digest']
    assert digest == reference.backbone_digest()
    lines = [line for line in _log_text(work).splitlines()
             if 'no checkpoint; backbone initialised by its init_cfg' in line]
    assert len(lines) == 1 and f"'checkpoint': '{init}'" in lines[0] and 'Pretrained' in lines[0]


def test_load_test_weights_without_checkpoint(seg_scope):
    from types import SimpleNamespace

    from mmseg.registry import MODELS

    from aoissl_mm.utils.test_setup import load_test_weights
    cfg = dict(type='RetrievalSegmentor', num_classes=C, random_backbone=True,
               backbone=dict(type='AOIViT', arch='tiny', in_channels=2, img_size=32,
                             patch_size=P))
    model = MODELS.build(cfg)
    wrapped = SimpleNamespace(model=SimpleNamespace(module=model))  # a DDP / TTA wrapper
    how = load_test_weights(wrapped, None)
    assert 'random_backbone=True' in how and model.backbone_digest() in how
    with pytest.raises(ValueError, match='a checkpoint holding the backbone is required'):
        load_test_weights(SimpleNamespace(model=MODELS.build(dict(cfg, random_backbone=False))),
                          None)


def _snapshot(directory):
    return {name: open(osp.join(directory, name), 'rb').read()
            for name in sorted(os.listdir(directory))}


def test_memory_add_on_a_corrupted_memory_writes_nothing(setup, monkeypatch, tmp_path):
    _, data_root, cfg_path, ckpt = setup
    mem = str(tmp_path / 'mem')
    _run('memory.py', ['build', cfg_path, ckpt, '--out', mem], monkeypatch)
    values = osp.join(mem, 'values_00000.npy')
    data = bytearray(open(values, 'rb').read())
    data[-1] ^= 0x01  # one bit of one stored mask
    open(values, 'wb').write(bytes(data))
    before, listing = _snapshot(mem), sorted(os.listdir(tmp_path))
    # memory.verify=False does not apply to add: it would re-save the corruption as valid
    for options in ([], ['--cfg-options', 'model.memory.verify=False']):
        with pytest.raises(ValueError, match=f'{values}: corrupted or truncated file: its '
                                             'SHA-256'):
            _run('memory.py', ['add', mem, cfg_path, ckpt, '--data-root', data_root, '--split',
                               'test'] + options, monkeypatch)
        assert _snapshot(mem) == before and sorted(os.listdir(tmp_path)) == listing
    with pytest.raises(ValueError, match='values_00000.npy: corrupted'):
        _run('memory.py', ['info', mem], monkeypatch)


def test_memory_of_whole_images(setup, monkeypatch, tmp_path):
    """custom_hooks.0.whole_images=True: no 64 crop; every patch of each whole training image,
    padded to the patch multiple (labels: background), in the dataset's (sorted) order."""
    from aoissl_mm.models.retrieval import PatchMemory
    _, data_root, cfg_path, ckpt = setup
    mem = str(tmp_path / 'whole')
    _run('memory.py', ['build', cfg_path, ckpt, '--out', mem, '--cfg-options',
                       'custom_hooks.0.whole_images=True'], monkeypatch)
    expected, count, shapes = [], 0, []
    for stem, p0, p1 in sorted(find_buffer_pairs(osp.join(data_root, 'images', 'train'))):
        h, w = read_buffer_pair(p0, p1).shape[:2]
        shapes.append((h, w))
        count += -(-h // P) * -(-w // P)  # ceil(H/p) * ceil(W/p)
        mask = read_multilabel_mask(osp.join(data_root, 'labels', 'train', f'{stem}.png'), C)
        padded = np.zeros((-(-h // P) * P, -(-w // P) * P, C), np.uint8)
        padded[:h, :w] = mask
        expected.append(_patches(padded))
    assert all(min(s) > CROP for s in shapes) and any(h != w for h, w in shapes)
    memory = PatchMemory.load(mem)
    assert len(memory) == count != 3 * (CROP // P)**2
    np.testing.assert_array_equal(memory.gather_values(torch.arange(len(memory))).numpy(),
                                  np.concatenate(expected))

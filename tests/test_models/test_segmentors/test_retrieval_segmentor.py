"""RetrievalSegmentor against an independent brute-force implementation of spec Eq. 5-7.

The reference below recomputes everything with numpy in float64 from the segmentor's own
``extract_feat`` keys and the raw label arrays: cosine similarities to every memory patch,
a stable sort (ties -> insertion order), the top-k per class, the weights of Eq. 5 / Eq. 6,
patches cut and pasted back by explicit slicing loops, strict thresholds.
"""
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

P = 16
C = 4
MEAN, STD = [45.42, 59.82], [56.70, 69.03]


def _images(n, size, seed):
    rng = np.random.default_rng(seed)
    imgs = rng.integers(0, 256, size=(n, 2) + size, dtype=np.uint8)
    imgs[:, :, :, :8] = 0  # a black border: identical keys
    masks = (rng.random((n, C) + size) < 0.3).astype(np.uint8)
    return imgs, masks


def _batch(imgs, masks):
    samples = []
    for m in masks:
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=torch.from_numpy(m))
        s.set_metainfo(dict(ori_shape=m.shape[1:], img_shape=m.shape[1:],
                            pad_shape=m.shape[1:], padding_size=[0, 0, 0, 0]))
        samples.append(s)
    return dict(inputs=[torch.from_numpy(i) for i in imgs], data_samples=samples)


def _keys(model, imgs):
    data = model.data_preprocessor(_batch(imgs, np.zeros((len(imgs), C) + imgs.shape[2:],
                                                         np.uint8)), False)
    return model.extract_feat(data['inputs']).double().numpy()


def _patches_loop(mask, p):
    """(C, H, W) -> (N, p*p, C), tokens row-major, pixels row-major, by slicing."""
    _, height, width = mask.shape
    out = []
    for r in range(height // p):
        for c in range(width // p):
            out.append(mask[:, r * p:(r + 1) * p, c * p:(c + 1) * p].reshape(C, -1).T)
    return np.stack(out).astype(np.float64)


def _paste_loop(patches, height, width, p):
    out = np.zeros((C, height, width))
    t = 0
    for r in range(height // p):
        for c in range(width // p):
            out[:, r * p:(r + 1) * p, c * p:(c + 1) * p] = patches[t].T.reshape(C, p, p)
            t += 1
    return out


def _brute_force(mem_keys, mem_vals, q_keys, ks, aggregation, betas, mode='inverse_distance'):
    sims = np.minimum(q_keys @ mem_keys.T, 1.0)
    out = np.zeros((q_keys.shape[0], mem_vals.shape[1], C))
    for i in range(q_keys.shape[0]):
        order = np.argsort(-sims[i], kind='stable')
        for c in range(C):
            top = order[:ks[c]]
            s = sims[i, top]
            if aggregation == 'attention':
                w = np.exp((s - s.max()) / betas[c])
            elif mode == 'inverse_distance':
                w = 1.0 / (1.0 - s + 1e-8)
            else:
                w = np.clip(s, 0, None)
            w = w / w.sum()
            out[i, :, c] = (w[:, None] * mem_vals[top, :, c]).sum(0)
    return out


@pytest.mark.parametrize('kwargs', [
    dict(k=5, aggregation='similarity'),
    dict(k=[1, 3, 7, 4], aggregation='similarity', threshold=[0.5, 0.3, 0.2, 0.6]),
    dict(k=[2, 6, 3, 5], aggregation='attention', beta=[0.02, 0.1, 0.3, 0.05]),
    dict(k=4, aggregation='similarity', similarity_mode='normalized'),
])
def test_patch_level_equals_brute_force(seg_scope, kwargs, build_model):
    model = build_model(**kwargs)
    mem_imgs, mem_masks = _images(3, (64, 48), seed=1)
    q_imgs, _ = _images(2, (48, 64), seed=2)
    model.build_memory([_batch(mem_imgs[:2], mem_masks[:2]), _batch(mem_imgs[2:], mem_masks[2:])],
                       progress=False)
    assert len(model.memory) == 3 * (64 // P) * (48 // P)
    mem_keys = _keys(model, mem_imgs).reshape(-1, 384)
    mem_vals = np.concatenate([_patches_loop(m, P) for m in mem_masks])
    q_keys = _keys(model, q_imgs)
    ref = _brute_force(mem_keys, mem_vals, q_keys.reshape(-1, 384), model.ks,
                       model.aggregation, model.betas, model.similarity_mode)
    ref = ref.reshape(2, -1, P * P, C)
    results = model.predict(model.data_preprocessor(_batch(q_imgs, np.zeros(
        (2, C, 48, 64), np.uint8)), False)['inputs'], _batch(q_imgs, np.zeros(
            (2, C, 48, 64), np.uint8))['data_samples'])
    thr = np.array(model.thresholds)[:, None, None]
    for b, res in enumerate(results):
        expected = _paste_loop(ref[b], 48, 64, P)
        scores = res.seg_logits.data.double().numpy()
        np.testing.assert_allclose(scores, expected, atol=1e-4)
        pred = res.pred_sem_seg.data.numpy()
        away = np.abs(expected - thr) > 1e-4
        np.testing.assert_array_equal(pred[away], (expected > thr)[away])


def test_query_not_multiple_of_patch_is_padded_with_black(seg_scope, build_model):
    model = build_model(k=3)
    mem_imgs, mem_masks = _images(2, (64, 64), seed=3)
    model.build_memory([_batch(mem_imgs, mem_masks)], progress=False)
    q_img, _ = _images(1, (40, 56), seed=4)
    padded = np.zeros((1, 2, 48, 64), np.uint8)  # raw black
    padded[:, :, :40, :56] = q_img
    pre = model.data_preprocessor
    small = pre(_batch(q_img, np.zeros((1, C, 40, 56), np.uint8)), False)['inputs']
    big = pre(_batch(padded, np.zeros((1, C, 48, 64), np.uint8)), False)['inputs']
    out_small = model.encode_decode(small, [])
    out_big = model.encode_decode(big, [])
    assert out_small.shape == (1, C, 40, 56)
    torch.testing.assert_close(out_small, out_big[:, :, :40, :56], atol=1e-5, rtol=0)


def test_identical_keys_tie_by_insertion_order(seg_scope, build_model):
    model = build_model(k=1)
    img, mask = _images(1, (32, 32), seed=5)
    other = 1 - mask  # same image, complementary labels, added second
    model.build_memory([_batch(img, mask), _batch(img, other)], progress=False)
    pre = model.data_preprocessor
    inputs = pre(_batch(img, mask), False)['inputs']
    scores = model.encode_decode(inputs, [])
    # every query patch has two identical keys at similarity 1: the first-added one wins
    np.testing.assert_allclose(scores[0].numpy(), mask[0].astype(np.float32), atol=1e-6)


def test_image_level_equals_brute_force(seg_scope, build_model):
    model = build_model(level='image', k=2, threshold=0.5)
    mem_imgs, mem_masks = _images(4, (32, 32), seed=6)
    model.build_memory([_batch(mem_imgs, mem_masks)], progress=False)
    assert len(model.memory) == 4
    q_imgs, _ = _images(1, (32, 32), seed=7)
    keys = _keys(model, mem_imgs)
    q = _keys(model, q_imgs)
    sims = np.minimum(q @ keys.T, 1)[0]
    top = np.argsort(-sims, kind='stable')[:2]
    w = 1 / (1 - sims[top] + 1e-8)
    w /= w.sum()
    expected = np.tensordot(w, mem_masks[top].astype(np.float64), axes=1)
    inputs = model.data_preprocessor(_batch(q_imgs, np.zeros((1, C, 32, 32), np.uint8)),
                                     False)['inputs']
    np.testing.assert_allclose(model.encode_decode(inputs, [])[0].numpy(), expected, atol=1e-4)


def _windows(size, crop, stride):
    """Window starts along one axis, written independently of mmseg's grid formula: every
    stride while a full window fits, then one flush with the far edge if pixels remain."""
    if crop >= size:
        return [(0, size)]
    starts = list(range(0, size - crop + 1, stride))
    if starts[-1] + crop < size:
        starts.append(size - crop)
    return [(s, s + crop) for s in starts]


def _slide_reference(model, inputs, crop, stride, average=True):
    """Each window through whole inference by hand; overlaps averaged (or, with
    ``average=False``, the last window overwriting: a deliberately wrong reference)."""
    _, _, height, width = inputs.shape
    total = np.zeros((1, C, height, width))
    count = np.zeros((1, 1, height, width))
    for y0, y1 in _windows(height, crop[0], stride[0]):
        for x0, x1 in _windows(width, crop[1], stride[1]):
            scores = model.encode_decode(inputs[:, :, y0:y1, x0:x1], []).double().numpy()
            if average:
                total[:, :, y0:y1, x0:x1] += scores
                count[:, :, y0:y1, x0:x1] += 1
            else:
                total[:, :, y0:y1, x0:x1] = scores
                count[:, :, y0:y1, x0:x1] = 1
    return total / count


def test_slide_equals_windows_averaged_by_hand(seg_scope, build_model):
    """Slide inference on an 80 x 48 query with 32 x 40 windows (40: not a multiple of the
    patch, so each window is padded with black and cropped back), strides 24 x 20: 3 x 2
    overlapping windows, the last of each axis moved back inside the image."""
    model = build_model(k=3)
    mem_imgs, mem_masks = _images(2, (64, 64), seed=8)
    model.build_memory([_batch(mem_imgs, mem_masks)], progress=False)
    q_img, _ = _images(1, (80, 48), seed=9)
    inputs = model.data_preprocessor(_batch(q_img, np.zeros((1, C, 80, 48), np.uint8)),
                                     False)['inputs']
    crop, stride = (32, 40), (24, 20)
    assert _windows(80, 32, 24) == [(0, 32), (24, 56), (48, 80)]
    assert _windows(48, 40, 20) == [(0, 40), (8, 48)]
    whole = model.inference(inputs, [{}]).double().numpy()
    model.test_cfg = dict(mode='slide', crop_size=crop, stride=stride)
    slide = model.inference(inputs, [{}]).double().numpy()
    assert slide.shape == (1, C, 80, 48)
    np.testing.assert_allclose(slide, _slide_reference(model, inputs, crop, stride), atol=1e-6)
    # the comparison can fail: windows are scored in their own context (slide != whole), and a
    # reference that does not average the overlaps is far off
    assert np.abs(slide - whole).max() > 0.05
    wrong = _slide_reference(model, inputs, crop, stride, average=False)
    assert np.abs(slide - wrong).max() > 0.05


def test_errors_are_named(seg_scope, build_model):
    model = build_model(k=50)
    with pytest.raises(RuntimeError, match='no memory'):
        model.encode_decode(torch.zeros(1, 2, 32, 32), [])
    img, mask = _images(1, (32, 32), seed=10)
    model.build_memory([_batch(img, mask)], progress=False)
    with pytest.raises(ValueError, match=r'k=50 is larger than the memory \(4 entries\)'):
        model.encode_decode(torch.zeros(1, 2, 32, 32), [])
    with pytest.raises(ValueError, match='no images'):
        model.build_memory([], progress=False)
    with pytest.raises(ValueError, match="'k' must be one int or a list of 4"):
        build_model(k=[1, 2])
    with pytest.raises(ValueError, match=r"'beta' must be one float or a list of 4 \(one per "
                                         r'class\), got 3 values'):
        build_model(aggregation='attention', beta=[0.02, 0.1, 0.3])
    with pytest.raises(ValueError, match="'beta' values must be > 0"):
        build_model(aggregation='attention', beta=[0.02, 0.1, 0.3, 0.0])
    with pytest.raises(ValueError, match="'threshold'"):
        build_model(threshold=[0.5, 0.5])
    with pytest.raises(RuntimeError, match='not trained'):
        model.loss(torch.zeros(1, 2, 32, 32), [])


def test_memory_metadata_mismatch_is_refused(seg_scope, tmp_path, build_model):
    model = build_model(k=1)
    img, mask = _images(1, (32, 32), seed=11)
    model.build_memory([_batch(img, mask)], progress=False)
    model.memory.save(str(tmp_path / 'mem'))
    other = build_model(k=1)
    with torch.no_grad():
        other.backbone.cls_token.add_(1.0)
    with pytest.raises(ValueError, match='backbone_digest'):
        other.load_memory(str(tmp_path / 'mem'))
    renamed = build_model(k=1, class_names=['a', 'b', 'c', 'd'])
    with pytest.raises(ValueError, match='classes'):
        renamed.load_memory(str(tmp_path / 'mem'))
    same = build_model(k=1)
    same.load_memory(str(tmp_path / 'mem'))
    assert len(same.memory) == 4


def test_checkpoint_backbone_is_taken_from_ssl_checkpoint(seg_scope, build_model):
    model = build_model()
    state = {f'backbone.{k}': v for k, v in model.backbone.state_dict().items()}
    state['neck.decoder_embed.weight'] = torch.zeros(2, 2)
    kept = model.filter_checkpoint_state(state, 'ssl.pth')
    assert set(kept) == {k for k in state if k.startswith('backbone.')}
    bare = model.filter_checkpoint_state(dict(model.backbone.state_dict()), 'bare.pth')
    assert set(bare) == set(model.state_dict())


def test_checkpoint_prefix_takes_the_dino_teacher(seg_scope, build_model):
    """A DINO/iBOT checkpoint holds the student (backbone.) and the EMA teacher
    (teacher.backbone.): checkpoint_prefix picks which one is loaded."""
    model = build_model(checkpoint_prefix='teacher.backbone.')
    own = model.backbone.state_dict()
    state = {f'backbone.{k}': torch.zeros_like(v) for k, v in own.items()}
    state.update({f'teacher.backbone.{k}': torch.full_like(v, 2.0) for k, v in own.items()})
    state['teacher.head.last_layer.weight'] = torch.zeros(3, 3)
    kept = model.filter_checkpoint_state(state, 'dino.pth')
    assert set(kept) == {f'backbone.{k}' for k in own}
    assert all(bool((v == 2.0).all()) for v in kept.values())
    model.load_state_dict(kept, strict=True)
    assert bool((model.backbone.cls_token == 2.0).all())
    # the default prefix takes the student
    student = build_model().filter_checkpoint_state(state, 'dino.pth')
    assert all(bool((v == 0.0).all()) for v in student.values())


def test_checkpoint_of_another_grid_gets_its_position_table_resized(seg_scope, build_model):
    """An iBOT encoder trained at 224 (14 x 14 grid) on a retrieval model of 64 px
    (4 x 4): the patch part of pos_embed is resized bicubically, the CLS slot kept;
    reference: torch's own bicubic resize of the 14 x 14 table."""
    model = build_model(checkpoint_prefix='teacher.backbone.')
    own = model.backbone.state_dict()
    dim = own['pos_embed'].shape[-1]
    side = 64 // P
    table = torch.randn(1, 1 + 14 * 14, dim)
    state = {f'teacher.backbone.{k}': v.clone() for k, v in own.items()}
    state['teacher.backbone.pos_embed'] = table
    kept = model.filter_checkpoint_state(state, 'ibot.pth')
    grid = table[:, 1:].reshape(1, 14, 14, dim).permute(0, 3, 1, 2)
    expected = torch.nn.functional.interpolate(grid, size=(side, side), mode='bicubic',
                                               align_corners=False)
    expected = torch.cat([table[:, :1], expected.permute(0, 2, 3, 1).reshape(1, -1, dim)], 1)
    assert kept['backbone.pos_embed'].shape == own['pos_embed'].shape
    torch.testing.assert_close(kept['backbone.pos_embed'], expected)
    model.load_state_dict(kept, strict=True)


def test_checkpoint_prefix_missing_or_malformed_is_an_error(seg_scope, build_model):
    model = build_model(checkpoint_prefix='teacher.backbone.')
    state = {f'backbone.{k}': v for k, v in model.backbone.state_dict().items()}
    with pytest.raises(ValueError, match="mae.pth: no key starts with checkpoint_prefix="
                                         "'teacher.backbone.'.*backbone.cls_token"):
        model.filter_checkpoint_state(state, 'mae.pth')
    with pytest.raises(ValueError, match="'checkpoint_prefix' must be a key prefix ending"):
        build_model(checkpoint_prefix='teacher')

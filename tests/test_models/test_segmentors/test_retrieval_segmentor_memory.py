"""RetrievalSegmentor memories: key size / value shape checked at load, empty memories refused,
k errors naming the memory, and whole (uncropped, non-square) memory images."""
import math
import pathlib

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from aoissl_mm.models.retrieval import PatchMemory
from aoissl_mm.models.retrieval.faiss_io import read_flat_index

P, C, D = 16, 4, 384
MEAN, STD = [45.42, 59.82], [56.70, 69.03]


def _sample(img, mask):
    s = SegDataSample()
    s.gt_sem_seg = PixelData(data=torch.from_numpy(mask))
    shape = mask.shape[1:]
    s.set_metainfo(dict(ori_shape=shape, img_shape=shape, pad_shape=shape,
                        padding_size=[0, 0, 0, 0]))
    return s


def _batch(imgs, masks):
    return dict(inputs=[torch.from_numpy(i) for i in imgs],
                data_samples=[_sample(i, m) for i, m in zip(imgs, masks)])


def _image(size, seed):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, size=(2, ) + size, dtype=np.uint8),
            (rng.random((C, ) + size) < 0.3).astype(np.uint8))


def _saved_memory(model, tmp_path, key_dim=D, value_shape=(P * P, C)):
    """A memory with this model's metadata but the given key size / value shape."""
    rng = np.random.default_rng(0)
    memory = PatchMemory(key_dim, value_shape, device='cpu', metadata=model.memory_metadata())
    memory.add(rng.standard_normal((8, key_dim)).astype(np.float32),
               (rng.random((8, ) + tuple(value_shape)) < 0.5).astype(np.uint8))
    path = str(tmp_path / f'mem_{key_dim}_{value_shape[0]}')
    memory.save(path)
    return path, memory


def test_memory_of_another_key_size_or_patch_geometry_is_refused_at_load(seg_scope, tmp_path,
                                                                          build_model):
    model = build_model(k=3)
    assert model.key_dim == D
    path, _ = _saved_memory(model, tmp_path, key_dim=192)
    with pytest.raises(ValueError, match=f"memory {path}: 'key_dim' is 192 in the saved memory "
                                         'but 384 is expected'):
        model.load_memory(path)
    path, _ = _saved_memory(model, tmp_path, value_shape=(8 * 8, C))
    with pytest.raises(ValueError, match=rf"memory {path}: 'value_shape' is \[64, 4\] in the "
                                         r'saved memory but \[256, 4\] is expected'):
        model.load_memory(path)
    assert model.memory is None
    # adding to an in-memory memory of another key size is refused too, before any entry
    _, wrong = _saved_memory(model, tmp_path, key_dim=192)
    img, mask = _image((32, 32), seed=1)
    with pytest.raises(ValueError, match='key_dim is 192 in the memory, but this model gives '
                                         '384-d keys'):
        model.build_memory([_batch([img], [mask])], memory=wrong, progress=False)
    assert len(wrong) == 8
    good, _ = _saved_memory(model, tmp_path)
    assert len(model.load_memory(good)) == 8


def test_empty_memory_and_k_errors_name_the_memory(seg_scope, tmp_path, build_model):
    model = build_model(k=9)
    model.memory = PatchMemory(D, (P * P, C), device='cpu')
    with pytest.raises(RuntimeError, match=r'the memory is empty \(0 entries\)'):
        model.encode_decode(torch.zeros(1, 2, 32, 32), [])
    with pytest.raises(ValueError, match=f'empty memory \\(0 entries\\) to {tmp_path / "e"}'):
        model.memory.save(str(tmp_path / 'e'))
    path, _ = _saved_memory(model, tmp_path)
    model.load_memory(path)
    with pytest.raises(ValueError, match=rf'k=9 is larger than the memory \(8 entries, saved '
                                         rf'in {path}\)'):
        model.encode_decode(torch.zeros(1, 2, 32, 32), [])


def _patches_loop(mask):
    """(C, H, W), H and W multiples of P -> (N, P*P, C), row-major, by slicing."""
    return np.stack([mask[:, r:r + P, c:c + P].reshape(C, -1).T
                     for r in range(0, mask.shape[1], P) for c in range(0, mask.shape[2], P)])


def test_whole_images_of_different_sizes_store_every_patch(seg_scope, tmp_path, build_model):
    """Whole non-square images of different sizes in one batch: each is padded (black image,
    background mask) to the patch multiple on its own, ceil(H/p) * ceil(W/p) entries each."""
    model = build_model(k=1)
    sizes = [(40, 56), (50, 30), (32, 48)]
    imgs, masks = zip(*(_image(s, seed=i) for i, s in enumerate(sizes)))
    model.build_memory([_batch(imgs[:2], masks[:2]), _batch(imgs[2:], masks[2:])],
                       progress=False)
    counts = [math.ceil(h / P) * math.ceil(w / P) for h, w in sizes]
    assert counts == [12, 8, 6] and len(model.memory) == sum(counts)
    # reference: each raw image padded with raw 0 (black) to the patch multiple, its keys from
    # extract_feat; each mask padded with 0; patches cut by slicing
    ref_keys, ref_vals = [], []
    for img, mask in zip(imgs, masks):
        h, w = img.shape[1:]
        padded = np.zeros((2, h + (-h) % P, w + (-w) % P), np.uint8)
        padded[:, :h, :w] = img
        pmask = np.zeros((C, ) + padded.shape[1:], np.uint8)
        pmask[:, :h, :w] = mask
        inputs = model.data_preprocessor(_batch([padded], [pmask]), False)['inputs']
        ref_keys.append(model.extract_feat(inputs)[0].numpy())
        ref_vals.append(_patches_loop(pmask))
    model.memory.save(str(tmp_path / 'mem'))
    keys, _ = read_flat_index(str(tmp_path / 'mem' / 'index_00000.faiss'))
    np.testing.assert_allclose(keys, np.concatenate(ref_keys), atol=1e-5)
    values = model.memory.gather_values(torch.arange(len(model.memory))).numpy()
    np.testing.assert_array_equal(values, np.concatenate(ref_vals))


def test_memory_verify_option(seg_scope, tmp_path, build_model):
    """model.memory.verify=False skips the SHA-256 check (a very large memory); the default
    refuses a flipped byte, naming the file. Neither reaches the PatchMemory constructor."""
    model = build_model(k=1)
    path, _ = _saved_memory(model, tmp_path)
    values = pathlib.Path(path) / 'values_00000.npy'
    data = bytearray(values.read_bytes())
    data[-1] ^= 0x01
    values.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f'{values}: corrupted or truncated file'):
        model.load_memory(path)
    lax = build_model(k=1, memory=dict(index_type='flat', device='cpu', verify=False))
    assert lax.memory_cfg == dict(index_type='flat', device='cpu')
    assert len(lax.load_memory(path)) == 8
    with pytest.raises(ValueError, match=f'{values}: corrupted or truncated file'):
        lax.load_memory(path, verify=True)

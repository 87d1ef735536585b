"""Bit packing round trip and byte counts; HummingBird patch sampling by hand."""
import numpy as np
import pytest
import torch

from aoissl_mm.models.retrieval import pack_bits, packed_size, sample_patches, unpack_bits


def test_pack_round_trip_and_bytes():
    rng = np.random.default_rng(0)
    values = (rng.random((5, 256, 4)) < 0.5).astype(np.float32)  # a ViT-Tiny patch
    packed = pack_bits(torch.from_numpy(values))
    assert packed.shape == (5, 128) and packed.dtype == np.uint8
    assert packed_size((256, 4)) == 128
    assert np.array_equal(unpack_bits(packed, (256, 4)), values.astype(np.uint8))
    odd = (rng.random((3, 5, 3)) < 0.5)  # 15 bits -> 2 bytes
    assert pack_bits(odd).shape == (3, 2)
    assert np.array_equal(unpack_bits(pack_bits(odd), (5, 3)), odd.astype(np.uint8))


def test_pack_bit_order_by_hand():
    values = np.zeros((1, 3, 3), np.uint8)  # flattened (unit, class) order, big-endian bits
    values[0, 0, 0] = 1  # bit 0 -> 0x80
    values[0, 2, 1] = 1  # bit 7 -> 0x01
    values[0, 2, 2] = 1  # bit 8 -> second byte 0x80
    assert pack_bits(values).tolist() == [[0x81, 0x80]]


def test_pack_errors():
    with pytest.raises(ValueError, match='binary'):
        pack_bits(np.full((1, 2, 2), 2))
    with pytest.raises(ValueError, match=r'\(N, 2\) uint8'):
        unpack_bits(np.zeros((1, 3), np.uint8), (4, 3))


def test_sampling_hand_example():
    masks = torch.zeros(5, 2, 2)
    masks[1, 0, 0] = 1  # class 0
    masks[2, 1, 0] = masks[2, 0, 1] = 1  # classes 0 and 1
    masks[3, 1, 0] = 1  # class 0
    # patches 0 and 4 are empty; f = [3, 1]: scores 3u1, 4u2, 3u3, then 1e6 for 0 and 4
    u = torch.rand(5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    scores = {1: 3 * u[1], 2: 4 * u[2], 3: 3 * u[3]}
    expected = sorted(sorted(scores, key=lambda i: float(scores[i]))[:2])
    keep = sample_patches(masks, 2, torch.Generator().manual_seed(3))
    assert keep.dtype == torch.int64 and keep.tolist() == expected
    keep = sample_patches(masks, 4, torch.Generator().manual_seed(3))  # one empty patch
    assert keep.tolist()[:3] == [1, 2, 3] and keep.tolist()[3] in (0, 4)
    assert sample_patches(masks, 9, None).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match='budget'):
        sample_patches(masks, 0, None)


def test_sampling_favours_rare_classes():
    masks = torch.zeros(40, 1, 2)
    masks[:39, 0, 0] = 1  # common class in 39 patches
    masks[39, 0, 1] = 1  # rare class in one patch (score u <= 1 vs 39u)
    g = torch.Generator().manual_seed(0)
    kept = sum(39 in sample_patches(masks, 5, g).tolist() for _ in range(50))
    assert kept >= 45

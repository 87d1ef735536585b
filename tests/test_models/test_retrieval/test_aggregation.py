"""Aggregation and patch layout vs hand-computed values and explicit loops."""
import math

import pytest
import torch

from aoissl_mm.models.retrieval import (
    aggregate_neighbours,
    attention_weights,
    patchify_masks,
    similarity_weights,
    unpatchify_scores,
)


def test_patchify_matches_slicing_loop():
    g = torch.Generator().manual_seed(0)
    masks = torch.randint(0, 2, (2, 3, 8, 12), generator=g)
    p = 4
    out = patchify_masks(masks, p)
    assert out.shape == (2, 2 * 3, 16, 3)
    for b in range(2):
        for i in range(2):
            for j in range(3):
                for u in range(p):
                    for v in range(p):
                        for c in range(3):
                            assert out[b, i * 3 + j, u * p + v, c] == \
                                masks[b, c, i * p + u, j * p + v]


def test_unpatchify_matches_loop_and_inverts():
    g = torch.Generator().manual_seed(1)
    scores = torch.rand(2, 6, 4, 3, generator=g)
    img = unpatchify_scores(scores, (2, 3), 2)
    assert img.shape == (2, 3, 4, 6)
    for b in range(2):
        for n in range(6):
            i, j = divmod(n, 3)
            for unit in range(4):
                u, v = divmod(unit, 2)
                assert torch.equal(img[b, :, i * 2 + u, j * 2 + v], scores[b, n, unit])
    assert torch.equal(patchify_masks(img, 2), scores)


def test_patch_layout_errors():
    with pytest.raises(ValueError, match='multiple of the patch size'):
        patchify_masks(torch.zeros(1, 2, 10, 8), 4)
    with pytest.raises(ValueError, match='grid'):
        unpatchify_scores(torch.zeros(1, 5, 4, 2), (2, 3), 2)


def test_two_neighbour_hand_example():
    sims = torch.tensor([[0.5, 0.0]])
    values = torch.tensor([[[[1., 0.]], [[0., 1.]]]])  # (M=1, K=2, P=1, C=2)
    # inverse distance: 1/0.5 = 2 and 1/1 = 1 -> weights 2/3, 1/3
    out = aggregate_neighbours(sims, values, [2, 2])
    assert torch.allclose(out, torch.tensor([[[2 / 3, 1 / 3]]]), atol=1e-6)
    # attention, beta 0.5: softmax([1, 0])
    e = math.e / (math.e + 1)
    out = aggregate_neighbours(sims, values, [2, 2], 'attention', [0.5, 0.5])
    assert torch.allclose(out, torch.tensor([[[e, 1 - e]]]), atol=1e-6)
    # normalised similarity: 0.5 / 0.5 and 0
    out = aggregate_neighbours(sims, values, [2, 2], similarity_mode='normalized')
    assert torch.allclose(out, torch.tensor([[[1., 0.]]]))
    # class 0 reads only the first neighbour
    out = aggregate_neighbours(sims, values, [1, 2])
    assert torch.allclose(out, torch.tensor([[[1., 1 / 3]]]), atol=1e-6)


def test_weight_edge_cases():
    w = similarity_weights(torch.tensor([[-0.2, -0.5], [0.6, -0.2]]), 'normalized')
    assert torch.allclose(w, torch.tensor([[0.5, 0.5], [1.0, 0.0]]))
    # a similarity above 1 (rounding) is clamped: weights stay positive and finite
    w = similarity_weights(torch.tensor([[1.0000002, 0.0]]))
    assert torch.isfinite(w).all() and (w > 0).all() and abs(w.sum().item() - 1) < 1e-6
    # a missing neighbour (-inf) gets weight 0
    w = similarity_weights(torch.tensor([[0.5, -float('inf')]]))
    assert torch.equal(w, torch.tensor([[1.0, 0.0]]))
    with pytest.raises(ValueError, match='beta'):
        attention_weights(torch.zeros(1, 2), 0.0)
    with pytest.raises(ValueError, match='similarity mode'):
        similarity_weights(torch.zeros(1, 2), 'cosine')


def _reference(sims, values, ks, aggregation, betas, mode):
    m_count, _, units, classes = values.shape
    out = torch.zeros(m_count, units, classes, dtype=torch.float64)
    for c in range(classes):
        for m in range(m_count):
            s = [min(float(x), 1.0) for x in sims[m, :ks[c]]]
            if aggregation == 'attention':
                raw = [math.exp(x / betas[c]) for x in s]
            elif mode == 'inverse_distance':
                raw = [1 / (1 - x + 1e-8) for x in s]
            else:
                raw = [max(x, 0.0) for x in s]
                raw = raw if sum(raw) > 0 else [1.0] * len(s)
            total = sum(raw)
            for j, r in enumerate(raw):
                out[m, :, c] += r / total * values[m, j, :, c].double()
    return out.float()


@pytest.mark.parametrize('aggregation,mode', [('similarity', 'inverse_distance'),
                                              ('similarity', 'normalized'),
                                              ('attention', 'inverse_distance')])
def test_aggregation_vs_loop_over_classes(aggregation, mode):
    g = torch.Generator().manual_seed(2)
    sims = torch.sort(torch.rand(5, 6, generator=g) * 1.6 - 0.6, dim=1, descending=True).values
    values = torch.randint(0, 2, (5, 6, 4, 3), generator=g).float()
    ks, betas = [1, 6, 3], [0.3, 0.02, 0.1]
    out = aggregate_neighbours(sims, values, ks, aggregation, betas, mode)
    ref = _reference(sims, values, ks, aggregation, betas, mode)
    assert torch.allclose(out, ref, atol=1e-5)


def test_aggregation_argument_errors():
    sims, values = torch.zeros(2, 3), torch.zeros(2, 3, 4, 2)
    with pytest.raises(ValueError, match='one value per class'):
        aggregate_neighbours(sims, values, [1, 2, 3])
    with pytest.raises(ValueError, match='one value per class'):
        aggregate_neighbours(sims, values, [1, 2], 'attention', [0.1])
    with pytest.raises(ValueError, match=r'in \[1, 3\]'):
        aggregate_neighbours(sims, values, [1, 4])
    with pytest.raises(ValueError, match='same M, K'):
        aggregate_neighbours(torch.zeros(2, 2), values, [1, 1])

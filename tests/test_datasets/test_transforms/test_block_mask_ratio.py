"""iBOT block masks of the CPU recipes' AOIMultiCrop, over many draws: masked share, the 0.5
probability per global view, and every token of the grid reachable.

The rule (aoi_multi_crop.AOIMultiCrop._masks, spec §6): a view is masked with probability
0.5; a masked view asks block_mask for ``int(U(0.1, 0.5) * N)`` of its N tokens, and blocks
are added until that count is reached or a round of 10 placement attempts adds nothing, so a
mask holds at most the requested count and (spec §6: "or no block can be placed") may hold a
few tokens less.

Bounds by hand, with U in [0.1, 0.5):
- 8 x 8 grid (ViT-Tiny, 16-px tokens, 128-px global crops), N = 64: 0.1 * 64 = 6.4 and
  0.5 * 64 = 32 (excluded), so the request is 6 to 31 tokens (shares 0.094 to 0.484).
- 4 x 4 grid (FasterViT-0, 32-px tokens, 128 px), N = 16: 1.6 and 8 (excluded): 1 to 7.
- Mean request E[floor(U N)] = (1 / (0.4 N)) * integral of floor(x) over [0.1 N, 0.5 N]:
  N = 64: (6 * 0.6 + 7 + ... + 31) / 25.6 = (3.6 + 475) / 25.6 = 18.695 tokens (share 0.2921);
  N = 16: (1 * 0.4 + 2 + ... + 7) / 6.4 = (0.4 + 27) / 6.4 = 4.281 tokens (share 0.2676).
"""
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config

from aoissl_mm.datasets.transforms import AOIMultiCrop
from aoissl_mm.datasets.transforms import aoi_multi_crop as amc

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
# CPU recipe -> (grid, smallest and largest request, mean request in tokens), by hand above
RECIPES = {
    'ibot_vit-tiny_budget20min_aoi-128.py': ((8, 8), 6, 31, 478.6 / 25.6),
    'ibot_fastervit0_budget20min_aoi-128.py': ((4, 4), 1, 7, 27.4 / 6.4),
}
DRAWS = 1500  # images, i.e. 3000 global views


def _recipe_crop(name: str) -> AOIMultiCrop:
    """The recipe's AOIMultiCrop, without augmentation and with one local crop (speed)."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'selfsup', name))
    (crop, ) = [t for t in cfg.train_dataloader.dataset.pipeline if t.type == 'AOIMultiCrop']
    assert crop.mask_prob == 0.5 and tuple(crop.mask_ratio) == (0.1, 0.5)
    kwargs = {k: v for k, v in crop.items() if k != 'type'}
    kwargs.update(augment=None, num_local=1)
    return AOIMultiCrop(**kwargs)


def _draw(name, monkeypatch):
    """Masks of DRAWS transforms, and ``(requested, masked)`` token counts per block_mask call.

    The transform calls block_mask once per masked view, so the calls are the views that
    drew "mask" (probability 0.5).
    """
    calls = []

    def recording(grid_hw, num_masked, min_block=None):
        mask = block_mask(grid_hw, num_masked, min_block)
        calls.append((num_masked, int(mask.sum())))
        return mask

    block_mask = amc.block_mask
    monkeypatch.setattr(amc, 'block_mask', recording)
    t = _recipe_crop(name)
    img = np.random.default_rng(0).integers(1, 255, size=(160, 160, 2)).astype(np.uint8)
    np.random.seed(0)
    masks = np.stack([t.transform(dict(img=img.copy()))['mask'] for _ in range(DRAWS)])
    return masks, np.array(calls)


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_masked_share_and_probability(name, monkeypatch):
    grid, low, high, mean_request = RECIPES[name]
    n = grid[0] * grid[1]
    masks, calls = _draw(name, monkeypatch)
    assert masks.shape == (DRAWS, 2, *grid) and masks.dtype == bool
    requests, got = calls[:, 0], calls[:, 1]
    # probability 0.5 per global view: the number of masked views is Binomial(2 * DRAWS, 0.5);
    # 4-sigma tolerances
    views = 2 * DRAWS
    assert abs(len(calls) - views / 2) <= 4 * np.sqrt(views / 4), len(calls)
    # per view slot and jointly (independent draws), from the masks themselves
    masked = masks.reshape(DRAWS, 2, n).any(axis=2)
    assert masked.sum() == len(calls)  # every masked view holds >= 1 token
    for v in range(2):
        assert abs(masked[:, v].sum() - DRAWS / 2) <= 4 * np.sqrt(DRAWS / 4)
    both = (masked[:, 0] & masked[:, 1]).sum()
    assert abs(both - DRAWS / 4) <= 4 * np.sqrt(DRAWS * 0.25 * 0.75), both
    assert sorted(masks.reshape(DRAWS, 2, n).sum(axis=2)[masked]) == sorted(got)
    # the request: int(U(0.1, 0.5) * N), from the hand-derived smallest to largest count,
    # with the hand-computed mean
    assert requests.min() == low and requests.max() == high
    se = requests.std() / np.sqrt(len(requests))
    assert abs(requests.mean() - mean_request) <= 4 * se, (requests.mean(), mean_request)
    # the mask: never more than asked, so the masked share never exceeds floor(0.5 N) / N
    assert (got >= 1).all() and (got <= requests).all()
    assert got.max() <= high and high / n < 0.5
    # ... and a stop before the request (a round of 10 attempts adding nothing) is rare and
    # short: at least 90 % of the views get exactly their request, the mean share stays ~0.3
    assert (got == requests).mean() >= 0.9
    assert abs(got.mean() - mean_request) / n <= 0.01


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_every_token_can_be_masked(name, monkeypatch):
    # BEiT / iBOT place a block at any top-left corner 0..H-h; mmpretrain 1.2.0's port draws
    # 0..H-h-1, so its blocks never reached the last row or column (7 of 16 FasterViT tokens)
    grid = RECIPES[name][0]
    masks, _ = _draw(name, monkeypatch)
    hits = masks.reshape(-1, *grid).sum(axis=0)
    assert (hits > 0).all(), hits
    # last row / column masked about as often as the first (the grid is symmetric)
    assert hits[-1].sum() > 0.5 * hits[0].sum() and hits[:, -1].sum() > 0.5 * hits[:, 0].sum()

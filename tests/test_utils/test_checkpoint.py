"""The one checkpoint reader: weights-only loading, key and shape checks."""
import pytest


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    import torch
    import torch.nn as nn
    from aoissl_mm.utils import check_checkpoint_matches
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4))
    good = str(tmp_path / 'good.pth')
    torch.save({'state_dict': {'module.' + k: v for k, v in model.state_dict().items()}}, good)
    assert set(check_checkpoint_matches(model, good)) == set(model.state_dict())
    other = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 1, 1))
    bad = str(tmp_path / 'other.pth')
    torch.save(other.state_dict(), bad)
    with pytest.raises(ValueError, match=r'other\.pth does not match.*0\.weight: model '
                                         r'\(4, 2, 3, 3\), checkpoint \(4, 3, 3, 3\)'
                                         r'.*not in model \[2\]: 3\.weight; 3\.bias'):
        check_checkpoint_matches(model, bad)

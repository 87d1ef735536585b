"""Tests of ``aoissl_mm/models/utils/attention.py``."""
import torch

from aoissl_mm.models.utils import Attention


def test_attention_matches_naive_softmax():
    torch.manual_seed(0)
    attn = Attention(dim=8, num_heads=2)
    x, bias = torch.randn(3, 5, 8), torch.randn(2, 5, 5)
    q, k, v = attn.qkv(x).view(3, 5, 3, 2, 4).permute(2, 0, 3, 1, 4)
    w = torch.softmax(q @ k.transpose(-1, -2) / 2.0 + bias, dim=-1)  # scale 4 ** -0.5
    ref = attn.proj((w @ v).transpose(1, 2).reshape(3, 5, 8))
    torch.testing.assert_close(attn(x, bias), ref, atol=1e-5, rtol=1e-5)

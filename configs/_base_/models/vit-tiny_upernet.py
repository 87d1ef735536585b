# ViT-Tiny (6 x 384, patch 16, 2 channels) + multi-label UPerNet (spec §2, §7.1): the
# FasterViT-0 model with another backbone. As in the paper, every pyramid level is the
# stride-16 map (no neck).
_base_ = ['./fastervit0_upernet.py']
model = dict(
    data_preprocessor=dict(size_divisor=16),
    backbone=dict(
        _delete_=True,
        type='AOIViT',
        arch='tiny',
        in_channels=2,
        img_size=512,
        patch_size=16,
        out_indices=(2, 3, 4, 5),
        drop_path_rate=0.0),
    decode_head=dict(in_channels=[384, 384, 384, 384]))

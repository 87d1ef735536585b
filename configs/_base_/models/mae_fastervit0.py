# MAE with learnable mask tokens on FasterViT-0 (spec §4): FasterViT cannot drop tokens, so
# masked 32-px units (its final stride) are replaced by its mask token after the stem; the
# decoder (384 wide, 2 blocks, fixed 2-D sin-cos positions) predicts the 32·32·2 pixels of
# each unit; MSE on masked units only. Crops must be multiples of 32.
# The encoder is stored under `backbone.`: upernet_fastervit0-sslpre_*.py loads it unchanged.
mask_ratio = 0.75  # spec §4.1 (the reference FasterViT config)
model = dict(
    type='MaskTokenMAE',
    mask_ratio=mask_ratio,
    data_preprocessor=dict(type='AOISelfSupDataPreprocessor'),
    backbone=dict(type='FasterViT', arch='0', in_channels=2, drop_path_rate=0.2, hat=False),
    neck=dict(
        type='MaskTokenMAEDecoder',
        in_channels=512,
        embed_dims=384,
        depth=2,
        num_heads=6,
        mlp_ratio=4.0,
        patch_size=32,
        out_channels=2,
        keep_encoder_tokens_at_mask=False),
    head=dict(
        type='MAEPretrainHead',
        patch_size=32,
        in_channels=2,
        norm_pix=False,  # spec §4.3: raw (Z-scored) pixels; True = per-patch normalised targets
        loss=dict(type='PixelReconstructionLoss', criterion='L2')))

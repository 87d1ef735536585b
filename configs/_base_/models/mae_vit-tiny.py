# MAE with learnable mask tokens on ViT-Tiny (spec §4): the encoder sees every 16-px patch,
# masked ones replaced by its mask token; decoder 384 wide, 2 blocks, fixed 2-D sin-cos
# positions, predicting the 16·16·2 pixels of each patch; MSE on masked patches only.
# The encoder is stored under `backbone.`: upernet_vit-tiny-sslpre_*.py loads it unchanged.
mask_ratio = 0.75  # spec §4.1 REC (paper ablation: 0.2, 0.4, 0.7, 0.95)
model = dict(
    type='MaskTokenMAE',
    mask_ratio=mask_ratio,
    data_preprocessor=dict(type='AOISelfSupDataPreprocessor'),
    backbone=dict(
        type='AOIViT', arch='tiny', in_channels=2, img_size=512, patch_size=16,
        drop_path_rate=0.0),
    neck=dict(
        type='MaskTokenMAEDecoder',
        in_channels=384,
        embed_dims=384,
        depth=2,
        num_heads=6,
        mlp_ratio=4.0,
        patch_size=16,
        out_channels=2,
        keep_encoder_tokens_at_mask=False),
    head=dict(
        type='MAEPretrainHead',
        patch_size=16,
        in_channels=2,
        norm_pix=False,  # spec §4.3: raw (Z-scored) pixels; True = per-patch normalised targets
        loss=dict(type='PixelReconstructionLoss', criterion='L2')))

# Image-level retrieval, FasterViT-0 (paper Eq. 7): key = the mean of the final-normed /32 tokens.
_base_ = ['./retrieval-image_vit-tiny_aoi-512.py']
model = dict(backbone=dict(_delete_=True, type='FasterViT', arch='0', in_channels=2,
                           drop_path_rate=0.0, hat=False))

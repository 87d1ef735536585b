# Patch-level retrieval with FasterViT-0: one key per 32x32 patch (the final /32 tokens, 512-d),
# value = the 32x32x4 mask. The paper keeps patch retrieval to ViTs (these tokens are coarse); this
# config measures how much that costs (README "Retrieval").
_base_ = ['./retrieval-patch-sim_vit-tiny_aoi-512.py']
model = dict(backbone=dict(_delete_=True, type='FasterViT', arch='0', in_channels=2,
                           drop_path_rate=0.0, hat=False))

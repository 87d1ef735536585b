# Image-level retrieval, ViT-Tiny (paper Eq. 7): key = the normalised CLS token, value = the whole
# 512x512x4 mask of the image; the k = 3 nearest images' masks, inverse-distance weighted (the
# reference's SSL-probe setting), threshold 0.5.
_base_ = ['./retrieval-patch-sim_vit-tiny_aoi-512.py']
model = dict(level='image', k=3, threshold=0.5)

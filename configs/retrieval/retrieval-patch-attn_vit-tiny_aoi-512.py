# Patch-level retrieval, ViT-Tiny, attention aggregation (paper Eq. 6: softmax(s / beta) over the
# top-k, beta = 0.02).
_base_ = ['./retrieval-patch-sim_vit-tiny_aoi-512.py']
model = dict(aggregation='attention', beta=0.02)

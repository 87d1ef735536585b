# Patch-level retrieval, ViT-Tiny, similarity aggregation (paper Eq. 5, the reference's inverse
# cosine distance weights), k = 30: the memory is every patch of the synthetic training split.
#   python tools/test.py configs/retrieval/retrieval-patch-sim_vit-tiny_aoi-512.py <checkpoint>
_base_ = [
    '../_base_/models/retrieval_vit-tiny.py', '../_base_/datasets/aoi_retrieval.py',
    '../_base_/default_runtime.py'
]

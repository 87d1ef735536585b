# Patch-level retrieval with a frozen ViT-Tiny (spec §8): keys = L2-normalised final patch tokens
# (384-d, one per 16x16 patch), values = the full 16x16x4 mask of the patch, exact inner-product
# Faiss index, top-k = 30, similarity aggregation (inverse cosine distance), strict per-class
# thresholds. The backbone comes from the checkpoint given to tools/test.py (MAE, DINO, iBOT or
# fine-tuned: its backbone.* tensors). k, beta and thresholds per class: tools/tune_retrieval.py.
_base_ = ['./multilabel_segmentor.py']
model = dict(
    _delete_=True,
    type='RetrievalSegmentor',
    data_preprocessor=dict(_base_.data_preprocessor, size_divisor=None),
    backbone=dict(type='AOIViT', arch='tiny', in_channels=2, img_size=512, patch_size=16,
                  drop_path_rate=0.0),
    num_classes=4,
    level='patch',
    k=30,
    aggregation='similarity',
    similarity_mode='inverse_distance',
    beta=0.02,
    threshold=0.3,  # the reference's SSL-probe value (k 30, threshold 0.3, beta 0.02)
    # a saved memory's files are checked against their SHA-256 when loaded; memory.verify=False
    # skips it (a memory too large to read through at every load)
    memory=dict(index_type='flat', fp16_keys=False, device='auto'),
    test_cfg=dict(mode='whole'))

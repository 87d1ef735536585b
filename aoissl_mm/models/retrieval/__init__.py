"""The retrieval memory layer (AOI-SSL spec §8): no mmseg here.

* :mod:`.aggregation` - patch masks in token order and the k-NN label transfer;
* :mod:`.bitpack` - binary values packed 8 per byte;
* :mod:`.search_index` - inner-product search (faiss GPU / CPU, or torch);
* :mod:`.patch_memory` - keys + packed values + metadata, sharded, saved
  atomically and loaded with checks;
* :mod:`.patch_sampling` - HummingBird-style patch sampling for bounded
  memories.
"""
from .aggregation import (
    aggregate_neighbours,
    attention_weights,
    patchify_masks,
    similarity_weights,
    unpatchify_scores,
)
from .bitpack import pack_bits, packed_size, unpack_bits
from .patch_memory import PatchMemory
from .patch_sampling import sample_patches
from .search_index import (
    FaissIndex,
    SearchIndex,
    TorchFlatIndex,
    build_search_index,
    faiss_available,
    faiss_gpu_count,
    read_search_index,
)

__all__ = [
    'aggregate_neighbours', 'attention_weights', 'patchify_masks', 'similarity_weights',
    'unpatchify_scores', 'pack_bits', 'packed_size', 'unpack_bits', 'PatchMemory',
    'sample_patches', 'FaissIndex', 'SearchIndex', 'TorchFlatIndex', 'build_search_index',
    'faiss_available', 'faiss_gpu_count', 'read_search_index'
]

"""What users call from Python (retrieval memories now; AOIInferencer next)."""
from .retrieval_memory import (
                               add_to_memory,
                               build_memory,
                               describe_memory,
                               init_retrieval_model,
                               memory_dataloader_cfg,
)

__all__ = [
    'add_to_memory', 'build_memory', 'describe_memory', 'init_retrieval_model',
    'memory_dataloader_cfg'
]

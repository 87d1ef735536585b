"""What users call from Python: inference (AOIInferencer), retrieval memories and tuning."""
from .inferencer import AOIInferencer
from .retrieval_memory import (
    add_to_memory,
    build_memory,
    describe_memory,
    init_retrieval_model,
    memory_dataloader_cfg,
)
from .retrieval_tuning import extract_tuning_data, tune_retrieval

__all__ = [
    'AOIInferencer', 'add_to_memory', 'build_memory', 'describe_memory', 'extract_tuning_data',
    'init_retrieval_model', 'memory_dataloader_cfg', 'tune_retrieval'
]

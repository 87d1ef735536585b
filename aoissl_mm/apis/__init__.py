"""What users call from Python: inference (AOIInferencer), retrieval memories and tuning,
held-out MAE loss."""
from .inferencer import AOIInferencer
from .mae_evaluation import heldout_pipeline, mae_heldout_loss, write_mae_loss_csv
from .retrieval_memory import (
    add_to_memory,
    build_memory,
    describe_memory,
    init_retrieval_model,
    memory_dataloader_cfg,
)
from .retrieval_tuning import extract_tuning_data, tune_retrieval
from .threshold_tuning import default_threshold_grid, threshold_counts, tune_thresholds

__all__ = [
    'AOIInferencer', 'add_to_memory', 'build_memory', 'default_threshold_grid', 'describe_memory',
    'extract_tuning_data', 'heldout_pipeline', 'init_retrieval_model', 'mae_heldout_loss',
    'memory_dataloader_cfg', 'threshold_counts', 'tune_retrieval', 'tune_thresholds',
    'write_mae_loss_csv'
]

"""Runner hooks."""
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .retrieval_memory_hook import RetrievalMemoryHook
from .retrieval_probe_hook import RetrievalProbeHook
from .rng_state_hook import RNGStateHook
from .teacher_schedule_hook import TeacherScheduleHook
from .time_budget_hook import TimeBudgetHook

__all__ = [
    'AtomicCheckpointHook', 'RetrievalMemoryHook', 'RetrievalProbeHook', 'RNGStateHook',
    'TeacherScheduleHook', 'TimeBudgetHook'
]

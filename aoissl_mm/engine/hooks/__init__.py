"""Runner hooks."""
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .budget_iter_timer_hook import BudgetIterTimerHook
from .head_lr_runtime_info_hook import HeadLRRuntimeInfoHook
from .retrieval_memory_hook import RetrievalMemoryHook
from .retrieval_probe_hook import RetrievalProbeHook
from .rng_state_hook import RNGStateHook
from .teacher_schedule_hook import TeacherScheduleHook
from .time_budget_hook import TimeBudgetHook

__all__ = [
    'AtomicCheckpointHook', 'BudgetIterTimerHook', 'HeadLRRuntimeInfoHook', 'RetrievalMemoryHook',
    'RetrievalProbeHook', 'RNGStateHook', 'TeacherScheduleHook', 'TimeBudgetHook'
]

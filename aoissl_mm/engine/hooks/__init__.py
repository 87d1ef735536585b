"""Runner hooks."""
from .retrieval_memory_hook import RetrievalMemoryHook
from .retrieval_probe_hook import RetrievalProbeHook
from .teacher_schedule_hook import TeacherScheduleHook
from .time_budget_hook import TimeBudgetHook

__all__ = ['RetrievalMemoryHook', 'RetrievalProbeHook', 'TeacherScheduleHook', 'TimeBudgetHook']

"""Runner hooks."""
from .retrieval_memory_hook import RetrievalMemoryHook
from .teacher_schedule_hook import TeacherScheduleHook
from .time_budget_hook import TimeBudgetHook

__all__ = ['RetrievalMemoryHook', 'TeacherScheduleHook', 'TimeBudgetHook']

"""Runner hooks."""
from .time_budget_hook import TimeBudgetHook

__all__ = ['TimeBudgetHook']
from .teacher_schedule_hook import TeacherScheduleHook

__all__ += ['TeacherScheduleHook']

"""mmengine's iteration timer with an ETA that knows about a time budget."""
from typing import Optional, Sequence, Union

from mmengine.hooks import IterTimerHook
from mmpretrain.registry import HOOKS as PRETRAIN_HOOKS
from mmseg.registry import HOOKS


@HOOKS.register_module()
@PRETRAIN_HOOKS.register_module()
class BudgetIterTimerHook(IterTimerHook):
    """:class:`~mmengine.hooks.IterTimerHook` whose training ETA respects a budget.

    mmengine estimates the ETA as the mean iteration time times the iterations
    left to ``max_iters``. Under a :class:`TimeBudgetHook` ``max_iters`` is
    only an upper bound (10⁷ in the budget configs), so the log read
    "eta: 266 days". When a hook of the runner publishes ``remaining_s`` (the
    :class:`TimeBudgetHook` does), the ETA is the smaller of the two: the
    training time left in the budget, or the iterations left at the mean
    speed. Validation and test ETAs are mmengine's. Without a budget hook this
    is exactly :class:`~mmengine.hooks.IterTimerHook`.
    """

    def _after_iter(self,
                    runner,
                    batch_idx: int,
                    data_batch: Optional[Union[dict, tuple, list]] = None,
                    outputs: Optional[Union[dict, Sequence]] = None,
                    mode: str = 'train') -> None:
        super()._after_iter(runner, batch_idx, data_batch, outputs, mode)
        if mode != 'train':
            return
        budgets = [hook.remaining_s for hook in runner.hooks
                   if isinstance(getattr(type(hook), 'remaining_s', None), property)]
        if budgets:
            eta = runner.message_hub.get_info('eta')
            left = min(budgets)
            runner.message_hub.update_info('eta', left if eta is None else min(eta, left))

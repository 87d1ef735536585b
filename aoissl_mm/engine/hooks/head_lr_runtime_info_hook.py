"""mmengine's runtime-info hook, logging the learning rate an iteration really used."""
from typing import Optional, Sequence, Union

from mmengine.hooks import RuntimeInfoHook
from mmpretrain.registry import HOOKS as PRETRAIN_HOOKS
from mmseg.registry import HOOKS


@HOOKS.register_module()
@PRETRAIN_HOOKS.register_module()
class HeadLRRuntimeInfoHook(RuntimeInfoHook):
    """:class:`~mmengine.hooks.RuntimeInfoHook` that logs the base (head) LR of each iteration.

    mmengine logs ``lr`` as the learning rate of parameter group 0, read
    before the iteration's schedule hooks run. Under layer-wise decay group 0
    is the mask token, at 0.75¹⁷ of the base LR, and a :class:`TimeBudgetHook`
    (which sets the LR in ``before_train_iter``, after mmengine's read) made
    the value one iteration old. This hook instead records, after the
    optimiser step and before any scheduler steps (``after_train_iter`` at
    ``VERY_HIGH`` priority), the largest LR over the parameter groups — under
    layer-wise decay the head's, i.e. the schedule's base LR — so the log and
    ``tools/plot_curves.py`` show the LR the iteration trained with.
    ``base_lr`` (the configured peak) is logged as before; every other piece
    of runtime information is mmengine's.
    """

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch: Optional[Union[dict, tuple, list]] = None) -> None:
        """Record the iteration; the LR is recorded after the step."""
        runner.message_hub.update_info('iter', runner.iter)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[Union[dict, tuple, list]] = None,
                         outputs: Optional[Union[dict, Sequence]] = None) -> None:
        """Record the losses (mmengine) and the LR this iteration used."""
        super().after_train_iter(runner, batch_idx, data_batch, outputs)
        for name, lrs in runner.optim_wrapper.get_lr().items():
            value = lrs[0] if name.endswith('base_lr') else max(lrs)
            runner.message_hub.update_scalar(f'train/{name}', value)

"""mmengine's CheckpointHook that never leaves a run without a loadable checkpoint."""
import os.path as osp
from typing import Any, List, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmpretrain.registry import HOOKS as PRETRAIN_HOOKS
from mmseg.registry import HOOKS

from ...utils.atomic_io import atomic_write_text, remove_stale_temporaries


class _DeferredRemoval:
    """A file backend whose ``remove`` / ``rmtree`` are recorded, to be run later."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self.pending: List[str] = []

    def remove(self, path: str) -> None:
        self.pending.append(path)

    def rmtree(self, path: str) -> None:
        self.pending.append(path)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


@HOOKS.register_module()
@PRETRAIN_HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` that saves first and removes old checkpoints afterwards.

    mmengine 0.10.7's hook deletes the oldest checkpoint (``max_keep_ckpts``)
    and the previous best checkpoint (``save_best``) *before* writing the new
    one, and writes ``last_checkpoint`` in place: a crash in between leaves a
    run with no checkpoint (the CPU configs keep one) or an empty
    ``last_checkpoint``. This hook, with the same arguments and the same
    files:

    1. writes the new checkpoint (atomically, through ``Runner.save_checkpoint``
       as patched by :mod:`aoissl_mm.compat`),
    2. then points ``last_checkpoint`` at it, atomically
       (:func:`aoissl_mm.utils.atomic_io.atomic_write_text`),
    3. and only then removes the checkpoints that fall out of
       ``max_keep_ckpts`` and the previous best checkpoint.

    A crash at any moment leaves the previous checkpoint (or the new one) and
    a ``last_checkpoint`` naming a complete file. Between steps 1 and 3 the
    folder briefly holds one checkpoint more than ``max_keep_ckpts``.

    A write killed half-way (``SIGKILL``) leaves its temporary file
    (``.<name>.<pid>.<hex>.tmp``) behind; when a run starts (e.g. the
    ``--resume`` after the crash), the hook deletes such files in its output
    folder whose writer process is gone, with a log line.
    """

    def before_train(self, runner: Any) -> None:
        """mmengine's set-up, then remove temporaries left by killed checkpoint writes."""
        super().before_train(runner)
        if not is_main_process():
            return
        for folder in {runner.work_dir, self.out_dir}:
            if not osp.isdir(folder):  # a remote out_dir (backend_args) is not searched
                continue
            for path in remove_stale_temporaries(folder):
                runner.logger.info(f'Removed {path}, the temporary file of a checkpoint write '
                                   'that was killed before it finished.')

    def _save_checkpoint_with_step(self, runner: Any, step: int, meta: dict) -> None:
        """mmengine's method, reordered: save, point ``last_checkpoint``, then remove."""
        dropped: Optional[int] = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids
                                            and self.keep_ckpt_ids[-1] == step):
            # _save_checkpoint and _save_best_checkpoint may both save at one step
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                dropped = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        atomic_write_text(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        if dropped is not None:
            self._remove(self.file_backend.join_path(self.out_dir,
                                                     self.filename_tmpl.format(dropped)))

    def _save_best_checkpoint(self, runner: Any, metrics: dict) -> None:
        """mmengine's method, with the previous best removed after the new one is saved."""
        backend = self.file_backend
        deferred = _DeferredRemoval(backend)
        self.file_backend = deferred
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            self.file_backend = backend
        current = {getattr(self, 'best_ckpt_path', None), getattr(self, 'last_ckpt', None),
                   *getattr(self, 'best_ckpt_path_dict', {}).values()}
        for path in deferred.pending:
            if path not in current:  # never the file just written
                self._remove(path)

    def _remove(self, path: str) -> None:
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # checkpoints saved by deepspeed are folders
            self.file_backend.rmtree(path)

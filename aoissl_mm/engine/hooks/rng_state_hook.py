"""Save the random number generators with every checkpoint and restore them on ``--resume``."""
import random
from typing import Any, Callable, Dict, Optional

import numpy as np
import torch
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop
from mmpretrain.registry import HOOKS as PRETRAIN_HOOKS
from mmseg.registry import HOOKS

__all__ = ['RNGStateHook', 'capture_rng_state', 'restore_rng_state', 'CHECKPOINT_KEY']

CHECKPOINT_KEY = 'rng_state'


def capture_rng_state() -> Dict[str, Any]:
    """The state of every global generator, as weights-only-loadable types.

    Torch states are ``uint8`` tensors, the numpy and Python Mersenne-Twister
    keys ``int64`` tensors, the rest ints, floats and None: nothing outside
    :func:`torch.load`'s own ``weights_only`` set (no allow-list entry needed).

    Returns:
        dict: ``torch`` (CPU generator), ``cuda`` (one per device, empty
        without CUDA), ``numpy`` (``np.random``'s global MT19937) and
        ``python`` (the ``random`` module).
    """
    _, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    cuda = []
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = [s.clone() for s in torch.cuda.get_rng_state_all()]
    return {
        'torch': torch.get_rng_state().clone(),
        'cuda': cuda,
        'numpy': {'keys': torch.from_numpy(keys.astype(np.int64)), 'pos': int(pos),
                  'has_gauss': int(has_gauss), 'cached_gaussian': float(cached_gaussian)},
        'python': {'version': int(version), 'internal': torch.tensor(internal, dtype=torch.int64),
                   'gauss_next': gauss_next},
    }


def restore_rng_state(state: Dict[str, Any]) -> None:
    """Set every global generator from :func:`capture_rng_state`'s output.

    Tensors may come back on a GPU (mmengine resumes with
    ``map_location=<device>``); they are moved to the CPU first. CUDA states
    are restored only when the number of devices matches.

    Raises:
        KeyError: ``state`` lacks one of the generators.
    """
    torch.set_rng_state(state['torch'].cpu().to(torch.uint8))
    cuda = list(state.get('cuda') or [])
    if cuda and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu().to(torch.uint8) for s in cuda])
        else:
            print_log(f'RNGStateHook: the checkpoint holds {len(cuda)} CUDA generator states, '
                      f'this machine has {torch.cuda.device_count()} devices; CUDA generators '
                      'not restored', logger='current', level=30)
    npy = state['numpy']
    np.random.set_state(('MT19937', npy['keys'].cpu().numpy().astype(np.uint32),
                         int(npy['pos']), int(npy['has_gauss']), float(npy['cached_gaussian'])))
    py = state['python']
    random.setstate((int(py['version']), tuple(int(v) for v in py['internal'].cpu().tolist()),
                     py['gauss_next']))


class _RestoreAfterSkip:
    """Stands in for ``IterBasedTrainLoop.dataloader_iterator`` while a resumed run skips.

    mmengine's loop replays the ``skip`` already-trained batches (running
    their data pipeline, which draws from the global generators when
    ``num_workers=0``); the generators must be restored after that, right
    before the first new batch is fetched. Then the loop gets its own
    iterator back.
    """

    def __init__(self, loop: Any, skip: int, restore: Callable[[], None]) -> None:
        self._loop, self._inner = loop, loop.dataloader_iterator
        self._left, self._restore = skip, restore

    def __iter__(self) -> '_RestoreAfterSkip':
        return self

    def __next__(self) -> Any:
        if self._left > 0:
            self._left -= 1
            return next(self._inner)
        self._restore()
        self._loop.dataloader_iterator = self._inner
        return next(self._inner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@HOOKS.register_module()
@PRETRAIN_HOOKS.register_module()
class RNGStateHook(Hook):
    """Make a resumed run draw the same random numbers as an uninterrupted one.

    mmengine 0.10.7 seeds the generators once and saves none of them, so after
    ``--resume`` drop-path, dropout and the data augmentations (``np.random``
    in the data pipeline) draw different numbers than the run would have.
    This hook:

    * saves, with every checkpoint, the state of the global generators (torch
      CPU and CUDA, ``np.random``, ``random``) under the checkpoint key
      ``'rng_state'`` (:func:`capture_rng_state`; weights-only types), plus
      the train sampler's seed;
    * on ``--resume`` restores them exactly where the uninterrupted run stood:
      for ``IterBasedTrainLoop`` after mmengine has replayed the already-
      trained batches (which keeps the sampler's position), before the first
      new one; for an epoch-based loop at ``before_train``. Loading weights
      with ``load_from`` restores nothing;
    * keeps validation from consuming the training generators: their state
      is taken before each validation and put back after it, so a run
      validated at iteration ``k`` and one resumed at ``k`` continue alike
      (a checkpoint saved during validation, e.g. the best one, stores the
      training state).

    Exact for one process with ``num_workers`` 0 or more (mmengine seeds each
    worker from the seed and its id, and the replay runs the same batches).
    With several processes the checkpoint holds rank 0's generators (only rank
    0 saves); only rank 0 restores them. A checkpoint without ``'rng_state'``
    (written before this hook) resumes as before, with a warning.
    """

    priority = 'LOWEST'  # after_val: put the training state back after every other hook

    def __init__(self) -> None:
        self._pending: Optional[Dict[str, Any]] = None
        self._training = False
        self._before_val: Optional[Dict[str, Any]] = None

    # ------------------------------------------------------------------ saving
    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        state = self._before_val if self._before_val is not None else capture_rng_state()
        state = dict(state, sampler_seed=self._sampler_seed(runner))
        checkpoint[CHECKPOINT_KEY] = state

    @staticmethod
    def _sampler_seed(runner: Any) -> Optional[int]:
        try:
            seed = getattr(runner.train_dataloader.sampler, 'seed', None)
        except Exception:  # no train dataloader (e.g. a checkpoint saved outside training)
            return None
        return int(seed) if isinstance(seed, (int, np.integer)) else None

    # ---------------------------------------------------------------- resuming
    def after_load_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        meta = checkpoint.get('meta') or {}
        self._pending = dict(iter=meta.get('iter'), state=checkpoint.get(CHECKPOINT_KEY))

    def before_train(self, runner: Any) -> None:
        self._training = True
        pending, self._pending = self._pending, None
        # resumed (not load_from): the loop continues at the checkpoint's iteration
        if pending is None or not runner.iter or runner.iter != pending['iter']:
            return
        state = pending['state']
        if state is None:
            print_log('RNGStateHook: the resumed checkpoint holds no random generator state; '
                      'the run continues with differently drawn augmentations and drop-path',
                      logger='current', level=30)
            return
        if get_world_size() > 1 and get_rank() != 0:
            return
        seed, saved_seed = self._sampler_seed(runner), state.get('sampler_seed')
        if saved_seed is not None and seed is not None and seed != saved_seed:
            print_log(f'RNGStateHook: the train sampler has seed {seed}, the checkpoint was '
                      f'trained with {saved_seed}: the data order differs from the '
                      'interrupted run (set randomness.seed as it was)',
                      logger='current', level=30)

        def restore() -> None:
            restore_rng_state(state)
            print_log(f'RNGStateHook: random generators restored at iteration {runner.iter}',
                      logger='current')

        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop):
            loop.dataloader_iterator = _RestoreAfterSkip(loop, runner.iter, restore)
        else:
            restore()

    def after_train(self, runner: Any) -> None:
        self._training = False

    # -------------------------------------------------------------- validation
    def before_val(self, runner: Any) -> None:
        if self._training:
            self._before_val = capture_rng_state()

    def after_val(self, runner: Any) -> None:
        if self._before_val is not None:
            restore_rng_state(self._before_val)
            self._before_val = None

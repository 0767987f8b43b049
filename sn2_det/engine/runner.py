"""The Runner the shipped configs name (``runner_type = 'CheckedRunner'``).

mmengine's ``Runner`` with four behaviours stated where they happen, not patched in:

- **Checkpoint loads state their purpose.** ``train`` / ``val`` / ``test`` record
  what the run is for (:attr:`CheckedRunner.purpose`) and ``resume`` that it resumes;
  ``load_checkpoint`` reads the file itself and checks it for that purpose
  (:func:`sn2_det.apis.detector_checkpoint.read_detector_checkpoint`): training with
  ``load_from`` fine-tunes (only the final predictors may misfit, one log line),
  ``resume`` is strict, ``val`` and ``test`` are strict and a test also checks the
  checkpoint's classes against the test dataset's; non-finite weights are refused.
  Old checkpoints' ``meta['config']``, which mmengine's ``resume`` would execute, is
  dropped on reading.
- **No checkpoint from diverged weights.** ``save_checkpoint`` refuses weights that
  hold a NaN or an infinity (:class:`~sn2_det.engine.non_finite_loss_hook.
  TrainingDivergedError`, naming the last finite checkpoint).
- **One training per work dir.** ``train`` holds an exclusive lock
  (``fcntl.flock`` on :data:`LOCK_NAME` in the work dir) for the whole run; a second
  training in the same work dir stops with :class:`WorkDirInUseError`. Only rank 0
  locks; the other ranks of a distributed run learn its outcome by a broadcast. The
  kernel releases the lock when the process ends, however it ends.
- **``--resume`` says what it resumes.** ``resume=True`` without ``load_from``
  takes the newest checkpoint of the work dir that loads and is finite
  (:func:`sn2_det.engine.resume.latest_loadable_checkpoint`); when there is none, one
  warning says so and training starts from the beginning (as mmdet does, so that one
  job script serves the first start and every restart).
"""
import contextlib
import os
import os.path as osp
import socket
from typing import Optional

from mmengine.dist import broadcast_object_list, get_world_size, is_main_process
from mmengine.model import is_model_wrapper
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from mmengine.runner.checkpoint import load_state_dict

from mmdet.models.detectors import BaseDetector

from ..utils.checkpoint import first_non_finite
from ..utils.errors import SN2DetError
from .non_finite_loss_hook import TrainingDivergedError
from .resume import last_finite_checkpoint, latest_loadable_checkpoint

try:
    import fcntl
except ImportError:  # not POSIX: no lock
    fcntl = None

LOCK_NAME = '.training.lock'


class WorkDirInUseError(SN2DetError, RuntimeError):
    """A work dir that a running training holds."""


@contextlib.contextmanager
def work_dir_lock(work_dir: str):
    """Hold the exclusive training lock of ``work_dir`` inside the block, or raise
    WorkDirInUseError at once when another process holds it."""
    if fcntl is None:
        yield
        return
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, LOCK_NAME)
    handle = open(path, 'a+')
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or 'another process'
        handle.close()
        raise WorkDirInUseError(
            f'work dir {work_dir} is in use by a running training ({holder}); its '
            f'checkpoints and last_checkpoint would be mixed with this run\'s: give this '
            f'training another --work-dir, or wait until that one ends') from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f'process {os.getpid()} on {socket.gethostname()}\n')
        handle.flush()
        yield
    finally:
        handle.truncate(0)
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


@RUNNERS.register_module()
class CheckedRunner(Runner):
    """See the module docstring. Registered in mmengine's root ``RUNNERS``, which
    mmdet's tools build from (mmdet's own ``RUNNERS`` is its child and finds it too)."""

    #: what the run is for: 'train', 'val' or 'test' (None before any)
    purpose: Optional[str] = None
    _resuming = False

    # --- what the run is for -------------------------------------------------------
    def train(self):
        self.purpose = 'train'
        with contextlib.ExitStack() as stack:
            error = None
            if is_main_process():
                try:
                    stack.enter_context(work_dir_lock(self.work_dir))
                except WorkDirInUseError as err:
                    error = str(err)
            if get_world_size() > 1:
                shared = [error]
                broadcast_object_list(shared, src=0)
                error = shared[0]
            if error:
                raise WorkDirInUseError(error)
            return super().train()

    def val(self):
        self.purpose = 'val'
        return super().val()

    def test(self):
        self.purpose = 'test'
        return super().test()

    # --- loading -------------------------------------------------------------------
    def load_or_resume(self) -> None:
        if not self._has_loaded and self._resume and self._load_from is None:
            found = latest_loadable_checkpoint(self.work_dir)
            if found is None:
                self.logger.warning(f'resume: no checkpoint to resume from in '
                                    f'{self.work_dir}; training starts from the '
                                    f'beginning')
                self._resume = False
            else:
                self._load_from = found
        super().load_or_resume()

    def resume(self, filename: str, *args, **kwargs) -> None:
        self._resuming = True
        try:
            super().resume(filename, *args, **kwargs)
        finally:
            self._resuming = False

    def load_purpose(self) -> str:
        """The purpose (:data:`sn2_det.apis.detector_checkpoint.PURPOSES`) of a load
        now."""
        if self._resuming:
            return 'resume'
        return 'fine-tune' if self.purpose == 'train' else 'evaluate'

    def load_checkpoint(self, filename: str, map_location='cpu', strict: bool = False,
                        revise_keys=[(r'^module.', '')]):
        from ..apis.detector_checkpoint import read_detector_checkpoint
        model = _unwrap(self.model)
        test_classes = None
        if self.purpose == 'test':
            dataset = getattr(self.test_dataloader, 'dataset', None)
            test_classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
        checkpoint = read_detector_checkpoint(model, filename, self.load_purpose(),
                                              self.cfg, map_location, test_classes,
                                              revise_keys)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        load_state_dict(model, checkpoint['state_dict'],
                        strict=strict or isinstance(model, BaseDetector),
                        logger=self.logger)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    # --- saving --------------------------------------------------------------------
    def save_checkpoint(self, out_dir: str, filename: str, *args, **kwargs):
        key = first_non_finite(_unwrap(self.model).state_dict())
        if key is not None:
            raise TrainingDivergedError(
                f'the weights became non-finite (NaN or infinity, first in {key}) by '
                f'iteration {self.iter}: {filename} is not saved. '
                f'{last_finite_checkpoint(self.work_dir)}')
        return super().save_checkpoint(out_dir, filename, *args, **kwargs)

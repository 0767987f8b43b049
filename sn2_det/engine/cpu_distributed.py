"""Distributed data-parallel training on CPU processes (gloo).

mmengine 0.10.7 assumes one GPU a process: its PyTorch launcher calls
``torch.cuda.set_device`` and its runner passes ``device_ids`` to DDP. Without CUDA,
:func:`init_cpu_process_group` starts the gloo process group before the runner (which
then skips its own start), and :class:`CPUDistributedDataParallel` drops the device ids.

Faults (issue 7): every collective of the group gives up after
``env_cfg.dist_cfg.timeout`` seconds (mmengine's key; :data:`DEFAULT_TIMEOUT_S` when
unset), so a rank whose peer hangs ends with an error instead of waiting for ever; a
peer that dies closes its connections and the others fail at their next collective,
and under torchrun (``tools/dist_train.sh``) the launcher stops the remaining workers
at once. The timeout must exceed the longest stretch one rank works alone (rank 0
saving a checkpoint or computing COCO metrics while the others wait).
"""
import datetime
import os

import torch
import torch.distributed as dist
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS

DEFAULT_TIMEOUT_S = 1800


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    def __init__(self, module, device_ids=None, **kwargs):
        super().__init__(module=module, device_ids=None, **kwargs)


def init_cpu_process_group(cfg) -> bool:
    """For a distributed launch without CUDA: gloo group and CPU DDP wrapper.

    Returns True when it started the group; the caller ends it with
    :func:`destroy_cpu_process_group` (gloo's threads abort the interpreter at exit
    when the group is left open).
    """
    if cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available():
        return False
    cfg.model_wrapper_cfg = dict(type='CPUDistributedDataParallel',
                                 broadcast_buffers=False,
                                 find_unused_parameters=cfg.get('find_unused_parameters',
                                                                False))
    if dist.is_initialized():
        return False
    timeout = (cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout')
               or DEFAULT_TIMEOUT_S)
    dist.init_process_group('gloo', rank=int(os.environ['RANK']),
                            world_size=int(os.environ['WORLD_SIZE']),
                            timeout=datetime.timedelta(seconds=timeout))
    return True


def destroy_cpu_process_group(started: bool, failed: bool = False) -> None:
    """End the group :func:`init_cpu_process_group` started (no barrier after an
    error: the other ranks may never reach it)."""
    if started and dist.is_initialized():
        if not failed:
            dist.barrier()
        dist.destroy_process_group()

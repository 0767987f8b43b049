"""Distributed data-parallel training on CPU processes (gloo).

mmengine 0.10.7 assumes one GPU a process: its PyTorch and Slurm launchers call
``torch.cuda.set_device`` (the Slurm one also takes the local rank modulo the GPU
count) and its runner passes ``device_ids`` to DDP. Without CUDA,
:func:`init_cpu_process_group` starts the gloo process group before the runner (which
then skips its own start), and :class:`CPUDistributedDataParallel` drops the device
ids; everything else is mmengine's wrapper with its defaults
(``find_unused_parameters=False`` unless the config sets that top-level key, as
mmengine's runner reads it). ``--launcher slurm`` (``tools/slurm_train.sh``) takes
rank and world size from ``SLURM_PROCID`` / ``SLURM_NTASKS`` and the master address
from ``MASTER_ADDR`` or the first host of ``SLURM_NODELIST`` (``scontrol``), the port
from ``MASTER_PORT`` (29500), as mmengine's Slurm launcher does.

Faults: every collective of the group gives up after
``env_cfg.dist_cfg.timeout`` seconds (mmengine's key; :data:`DEFAULT_TIMEOUT_S` when
unset), so a rank whose peer hangs ends with an error instead of waiting for ever; a
peer that dies closes its connections and the others fail at their next collective,
and under torchrun (``tools/dist_train.sh``) the launcher stops the remaining workers
at once. The timeout must exceed the longest stretch one rank works alone (rank 0
saving a checkpoint or computing COCO metrics while the others wait).
"""
import datetime
import logging
import os
import subprocess

import torch
import torch.distributed as dist
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm
from mmengine.registry import MODEL_WRAPPERS

from ..utils.errors import LaunchError

DEFAULT_TIMEOUT_S = 1800


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """mmengine's DDP wrapper on CPU processes. PyTorch's SyncBatchNorm refuses CPU
    modules (mmdet's RTMDet configs use it): its layers become BN, each process
    normalising over its own batch, with their weights and statistics kept."""

    def __init__(self, module, device_ids=None, **kwargs):
        if any(isinstance(m, nn.SyncBatchNorm) for m in module.modules()):
            module = revert_sync_batchnorm(module)
            print_log('SyncBN layers run as BN on CPU processes (each normalises its '
                      'own batch)', logger='current', level=logging.WARNING)
        super().__init__(module=module, device_ids=None, **kwargs)


def slurm_environment(environ=os.environ) -> dict:
    """``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT`` of a
    task started by ``srun`` (see the module docstring)."""
    missing = [k for k in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST')
               if k not in environ]
    if missing:
        raise LaunchError(f'--launcher slurm runs under srun (tools/slurm_train.sh); '
                          f'{", ".join(missing)} not set')
    addr = environ.get('MASTER_ADDR')
    if not addr:
        hosts = subprocess.run(['scontrol', 'show', 'hostnames', environ['SLURM_NODELIST']],
                               capture_output=True, text=True, check=True).stdout.split()
        addr = hosts[0]
    return dict(RANK=environ['SLURM_PROCID'], WORLD_SIZE=environ['SLURM_NTASKS'],
                LOCAL_RANK=environ.get('SLURM_LOCALID', '0'), MASTER_ADDR=addr,
                MASTER_PORT=environ.get('MASTER_PORT', '29500'))


def init_cpu_process_group(cfg) -> bool:
    """For a distributed launch without CUDA: gloo group and CPU DDP wrapper.

    Returns True when it started the group; the caller ends it with
    :func:`destroy_cpu_process_group` (gloo's threads abort the interpreter at exit
    when the group is left open).
    """
    launcher = cfg.get('launcher', 'none')
    if launcher not in ('pytorch', 'slurm') or torch.cuda.is_available():
        return False
    if launcher == 'slurm':
        os.environ.update(slurm_environment())
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

from .atomic_files import AtomicLocalBackend
from .cpu_distributed import CPUDistributedDataParallel
from .non_finite_loss_hook import NonFiniteLossHook, TrainingDivergedError
from .runner import CheckedRunner, WorkDirInUseError
from .seeding import IterationSeedHook

__all__ = ['AtomicLocalBackend', 'CheckedRunner', 'CPUDistributedDataParallel',
           'IterationSeedHook', 'NonFiniteLossHook', 'TrainingDivergedError',
           'WorkDirInUseError']

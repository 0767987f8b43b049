from .atomic_files import AtomicLocalBackend
from .cpu_distributed import CPUDistributedDataParallel
from .non_finite_loss_hook import NonFiniteLossHook
from .seeding import IterationSeedHook

__all__ = ['AtomicLocalBackend', 'CPUDistributedDataParallel', 'IterationSeedHook',
           'NonFiniteLossHook']

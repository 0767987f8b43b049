from .cpu_distributed import CPUDistributedDataParallel
from .non_finite_loss_hook import NonFiniteLossHook

__all__ = ['CPUDistributedDataParallel', 'NonFiniteLossHook']

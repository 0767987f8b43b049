from .hardest_roi_sampler import HardestRoISampler

__all__ = ['HardestRoISampler']

# The toy detector trained with an EMA of its weights (configs/_base_/ema.py).
_base_ = ['./lighthead_sn2_toy.py', '../_base_/ema.py']
custom_hooks = _base_.custom_hooks + [_base_.ema_hook]

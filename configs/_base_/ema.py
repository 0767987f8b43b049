# Exponential moving average (EMA) of the weights, as RTMDet trains: mmengine's EMAHook
# with mmdet's ExpMomentumEMA (momentum 0.0002, warm-up gamma 2000, BN statistics
# averaged too). Off in every shipped config, since neither the ShuffleNet V2 nor the
# Light-Head R-CNN paper trains with it. To turn it on, inherit this file beside the
# config and append the hook (configs/toy/lighthead_sn2_toy_ema.py does this):
#
#     _base_ = ['./lighthead_sn2.py', './_base_/ema.py']
#     custom_hooks = _base_.custom_hooks + [_base_.ema_hook]
#
# Validation and testing then run on the averaged weights; a checkpoint's
# `state_dict` holds the averaged weights (so tools/test.py, tools/infer.py and
# DetInferencer use them) and `ema_state_dict` the raw ones, which --resume restores.
ema_hook = dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0002,
                update_buffers=True, priority=49)

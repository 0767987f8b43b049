_base_ = './_lighthead_table7.py'

model = dict(backbone=dict(
    name='shufflenet_v2', level=40,
    init_cfg=dict(type='Pretrained',
                  checkpoint='checkpoints/shufflenet_v2_0.5x_imagenet.pth')))

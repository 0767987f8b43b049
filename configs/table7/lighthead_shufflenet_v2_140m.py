_base_ = './_lighthead_table7.py'

model = dict(backbone=dict(
    name='shufflenet_v2', level=140,
    init_cfg=dict(type='Pretrained',
                  checkpoint='checkpoints/shufflenet_v2_1.0x_imagenet.pth')))

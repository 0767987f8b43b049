_base_ = './_lighthead_table7.py'

model = dict(backbone=dict(
    name='shufflenet_v2_star', level=500,
    init_cfg=dict(type='Pretrained',
                  checkpoint='checkpoints/shufflenet_v2_star_2.0x_imagenet.pth')))

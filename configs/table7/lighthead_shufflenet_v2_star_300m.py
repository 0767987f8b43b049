_base_ = './_lighthead_table7.py'

model = dict(backbone=dict(
    name='shufflenet_v2_star', level=300,
    init_cfg=dict(type='Pretrained',
                  checkpoint='checkpoints/shufflenet_v2_star_1.5x_imagenet.pth')))

_base_ = './_lighthead_table7.py'

model = dict(backbone=dict(
    name='shufflenet_v1', level=40,
    init_cfg=dict(type='Pretrained',
                  checkpoint='checkpoints/shufflenet_v1_40m_imagenet.pth')))

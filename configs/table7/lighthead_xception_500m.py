_base_ = './_lighthead_table7.py'

model = dict(backbone=dict(
    name='xception', level=500,
    init_cfg=dict(type='Pretrained',
                  checkpoint='checkpoints/xception_500m_imagenet.pth')))

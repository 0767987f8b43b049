_base_ = './_lighthead_table7.py'

model = dict(backbone=dict(
    name='xception', level=300,
    init_cfg=dict(type='Pretrained',
                  checkpoint='checkpoints/xception_300m_imagenet.pth')))

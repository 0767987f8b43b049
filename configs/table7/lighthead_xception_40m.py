_base_ = './_lighthead_table7.py'

model = dict(backbone=dict(
    name='xception', level=40,
    init_cfg=dict(type='Pretrained',
                  checkpoint='checkpoints/xception_40m_imagenet.pth')))

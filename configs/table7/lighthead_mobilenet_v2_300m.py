_base_ = './_lighthead_table7.py'

model = dict(backbone=dict(
    name='mobilenet_v2', level=300,
    init_cfg=dict(type='Pretrained',
                  checkpoint='checkpoints/mobilenet_v2_300m_imagenet.pth')))

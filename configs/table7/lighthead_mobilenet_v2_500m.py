_base_ = './_lighthead_table7.py'

model = dict(backbone=dict(
    name='mobilenet_v2', level=500,
    init_cfg=dict(type='Pretrained',
                  checkpoint='checkpoints/mobilenet_v2_500m_imagenet.pth')))

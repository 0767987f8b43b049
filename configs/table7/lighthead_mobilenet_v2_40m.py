_base_ = './_lighthead_table7.py'

model = dict(backbone=dict(name='mobilenet_v2', level=40))

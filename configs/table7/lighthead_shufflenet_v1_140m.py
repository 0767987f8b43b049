_base_ = './_lighthead_table7.py'

model = dict(backbone=dict(name='shufflenet_v1', level=140))

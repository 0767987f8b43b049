_base_ = './_lighthead_table7.py'

model = dict(backbone=dict(name='xception', level=300))

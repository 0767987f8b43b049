# ImageNet pretraining of a comparison backbone of paper Table 7, named by its
# complexity level like configs/table7/ (sn2_det.models.backbones.table7 holds the
# widths). The detector cells' frozen stem and BN are undone for pretraining, and the
# classifier reads the backbone's last stage (Xception and ShuffleNet v1 have no final
# 1x1 conv); MobileNet v2 cells set out_indices=(3,), its final 1x1 conv.
_base_ = './imagenet_sgd.py'

model = dict(backbone=dict(type='Table7Backbone', name='xception', level=140,
                           out_indices=(2,), frozen_stages=-1, norm_eval=False,
                           norm_cfg=dict(type='BN', requires_grad=True)))

from .mobilenet_v2 import StagedMobileNetV2
from .shufflenet_v1 import ShuffleNetV1
from .shufflenet_v2 import ShuffleNetV2
from .table7 import (TABLE7_BACKBONES, TABLE7_LEVELS, build_table7_backbone,
                     table7_backbone_cfg, table7_classifier_cfg, table7_width)
from .xception import Xception

__all__ = ['ShuffleNetV2', 'ShuffleNetV1', 'Xception', 'StagedMobileNetV2',
           'TABLE7_BACKBONES', 'TABLE7_LEVELS', 'table7_backbone_cfg',
           'table7_classifier_cfg', 'table7_width', 'build_table7_backbone']

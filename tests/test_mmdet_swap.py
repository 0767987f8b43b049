"""The backbone inside mmdet's own Faster R-CNN and RetinaNet configs."""
from pathlib import Path

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.structures import InstanceData

from pretrained_weights import write_backbone_checkpoint

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ['configs/swap/faster-rcnn_sn2-1.0x_fpn_1x_coco.py',
           'configs/swap/retinanet_sn2-1.0x_fpn_1x_coco.py']


def _batch(h=160, w=224):
    torch.manual_seed(0)
    sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                         scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[10., 20., 90., 120.], [100., 30., 200., 150.]]),
        labels=torch.tensor([3, 17]))
    return dict(inputs=[torch.randint(0, 255, (3, h, w), dtype=torch.uint8)],
                data_samples=[sample])


@pytest.mark.parametrize('config', CONFIGS)
def test_swap_config_trains_and_predicts(config, tmp_path):
    cfg = Config.fromfile(str(ROOT / config))
    assert cfg.model.backbone.type == 'ShuffleNetV2'
    assert 'depth' not in cfg.model.backbone  # ResNet keys were deleted
    cfg.model.backbone.init_cfg.checkpoint = write_backbone_checkpoint(
        cfg, tmp_path / 'imagenet.pth')  # the ImageNet weights the config loads
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    data = model.data_preprocessor(_batch(), training=True)
    losses = model(**data, mode='loss')
    total = sum(v if isinstance(v, torch.Tensor) else sum(v) for k, v in losses.items()
                if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.layers[2][0].branch_main[0].conv.weight.grad is not None
    assert model.backbone.conv1.conv.weight.grad is None  # frozen_stages=1

    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(_batch(), training=False)
        results = model(**data, mode='predict')
    pred = results[0].pred_instances
    assert pred.bboxes.shape[1] == 4 and len(pred.bboxes) == len(pred.scores)

"""Stand-ins for the ImageNet weights a shipped config loads: a whole-network backbone
checkpoint (random weights) as tools/convert_weights.py and tools/extract_backbone.py
write it, with the meta they record. Tests point a config's
``model.backbone.init_cfg.checkpoint`` at it, a path, as a user does."""
import torch
from mmdet.registry import MODELS

from sn2_det.models.backbones.table7 import classifier_cfg


def write_backbone_checkpoint(cfg, path) -> str:
    """The backbone of config ``cfg`` (an mmengine Config) as a whole network, saved
    to ``path`` with ``meta`` = its architecture and ``cfg``'s input normalisation."""
    backbone_cfg = dict(cfg.model.backbone.to_dict(), init_cfg=None)
    net = MODELS.build(classifier_cfg(backbone_cfg))
    meta = dict(data_preprocessor={k: cfg.model.data_preprocessor[k]
                                   for k in ('mean', 'std', 'bgr_to_rgb')})
    if hasattr(net, 'arch_args'):
        meta['backbone'] = net.arch_args()
    torch.save(dict(state_dict=net.state_dict(), meta=meta), str(path))
    return str(path)


def config_with_weights(config: str, tmp_path) -> str:
    """A user config inheriting ``config`` whose backbone loads a stand-in of the
    ImageNet weights it names (written beside it)."""
    from mmengine.config import Config
    weights = write_backbone_checkpoint(Config.fromfile(config), tmp_path / 'imagenet.pth')
    path = tmp_path / 'with_weights.py'
    path.write_text(f"_base_ = {config!r}\nmodel = dict(backbone=dict(init_cfg=dict("
                    f"checkpoint={weights!r})))\n")
    return str(path)

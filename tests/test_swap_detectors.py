"""ShuffleNet V2 in mmdet's one-stage detectors and Mask R-CNN (configs/swap), and the
comparison of the detector families on one budget (tools/compare_detectors.py).

- every swap config builds on mmdet's own base, its backbone gives what the family
  needs (strides, channels, SSDLite's two outputs), every trainable parameter gets a
  gradient (mmengine's DDP wrapper has find_unused_parameters off), mmdet's hooks of
  the family are kept beside the pretrained-weights check;
- the ImageNet weights each config names load into it, with the normalisation they
  were trained on (torchvision's, converted by tools/convert_weights.py; V2*: the
  pretraining config's);
- ``tools/dist_train.sh CONFIG 2`` on generated toy data, the configs changed only in
  data paths, batch size, run length and the weights' path (slow);
- the comparison's budget is one for every family, and the tool runs (slow).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.structures import InstanceData

import mmdet
import sn2_det  # noqa: F401
from sn2_det.analysis.detector_comparison import FAMILIES, Budget, toy_config
from sn2_det.apis.pretrained_check import PretrainedWeightsError, check_pretrained_backbone
from sn2_det.models.backbones.shufflenet_v2_weights import convert_checkpoint_file

from helpers import free_port, tiny_toy_and_coco
from pretrained_weights import write_backbone_checkpoint
from reference_shufflenet import TorchvisionLayoutNet, randomize

ROOT = Path(__file__).resolve().parents[1]
MMDET_CONFIGS = Path(mmdet.__file__).parent / '.mim' / 'configs'
# config (V2): (mmdet base, mmdet hooks it keeps, what the backbone must give)
SWAP = {
    'configs/swap/rtmdet_tiny_sn2-1.0x_8xb32-300e_coco.py':
        ('rtmdet/rtmdet_tiny_8xb32-300e_coco.py', {'EMAHook', 'PipelineSwitchHook'}, 8),
    'configs/swap/yolox_tiny_sn2-1.0x_8xb8-300e_coco.py':
        ('yolox/yolox_tiny_8xb8-300e_coco.py',
         {'YOLOXModeSwitchHook', 'SyncNormHook', 'EMAHook'}, 8),
    'configs/swap/yolox_nano_sn2-0.5x_8xb8-300e_coco.py':
        ('yolox/yolox_nano_8xb8-300e_coco.py',
         {'YOLOXModeSwitchHook', 'SyncNormHook', 'EMAHook'}, 8),
    'configs/swap/ssdlite_sn2-1.0x_8xb24-600e_coco.py':
        ('ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py',
         {'NumClassCheckHook', 'CheckInvalidLossHook'}, 16),
    'configs/swap/gfl_sn2-1.0x_fpn_320_1x_coco.py': ('gfl/gfl_r50_fpn_1x_coco.py', set(), 8),
    'configs/swap/fcos_sn2-1.0x_fpn_gn-head_1x_coco.py':
        ('fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py', set(), 8),
    'configs/swap/mask-rcnn_sn2-1.0x_fpn_1x_coco.py':
        ('mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', set(), 8),
}
STAR = {config.replace('_sn2-', '_sn2star-'): config for config in SWAP}
CONFIGS = sorted(SWAP) + sorted(STAR)
IMAGENET_RGB = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                    bgr_to_rgb=True)


def _unscoped(node):
    """``node`` without the ``_scope_`` keys mmengine adds to an ``mmdet::`` base."""
    if isinstance(node, dict):
        return {k: _unscoped(v) for k, v in node.items() if k != '_scope_'}
    if isinstance(node, (list, tuple)):
        return [_unscoped(v) for v in node]
    return node


def _cfg(config: str) -> Config:
    return Config.fromfile(str(ROOT / config))


def test_every_swap_config_is_here():
    shipped = {str(p.relative_to(ROOT)) for p in (ROOT / 'configs/swap').glob('*.py')}
    assert set(CONFIGS) <= shipped
    assert len(shipped) == len(CONFIGS) + 2  # and Faster R-CNN, RetinaNet


@pytest.mark.parametrize('config', sorted(SWAP))
def test_on_mmdets_base_with_the_backbone_swapped(config):
    """The config is mmdet's base with the backbone, the neck's input channels and
    the input normalisation (the weights') changed; mmdet's hooks stay."""
    base_name, mmdet_hooks, _ = SWAP[config]
    text = (ROOT / config).read_text()
    # mmdet's config first, then what every swap config adds (configs/_base_/swap_sn2.py)
    assert f"_base_ = ['mmdet::{base_name}'," in text and "'../_base_/swap_sn2.py']" in text
    cfg, base = _cfg(config), Config.fromfile(MMDET_CONFIGS / base_name)
    assert cfg.model.type == base.model.type
    assert cfg.model.backbone.type == 'ShuffleNetV2'
    assert not set(cfg.model.backbone) & (set(base.model.backbone) - {'type', 'init_cfg',
                                                                      'norm_cfg',
                                                                      'norm_eval',
                                                                      'frozen_stages',
                                                                      'out_indices',
                                                                      'widen_factor'})
    assert {k: cfg.model.data_preprocessor[k] for k in IMAGENET_RGB} == IMAGENET_RGB
    hooks = [h['type'] for h in cfg.custom_hooks]
    assert hooks[-1] == 'PretrainedBackboneCheckHook'
    base_hooks = {h['type'] for h in base.get('custom_hooks', [])}
    assert set(hooks[:-1]) == mmdet_hooks == base_hooks
    for key in ('bbox_head', 'rpn_head', 'roi_head'):
        assert cfg.model.get(key) is None or cfg.model[key].type == (
            'PredictableSSDHead' if 'ssdlite' in config else base.model[key].type), key
    for key in ('train_cfg', 'test_cfg'):
        assert _unscoped(cfg.model.get(key)) == _unscoped(base.model.get(key)), key
    for key in ('train_cfg', 'optim_wrapper', 'param_scheduler', 'train_dataloader'):
        if 'gfl' in config and key == 'train_dataloader':  # NanoDet's 320 pixels
            scales = {tuple(step['scale']) for loader in ('train', 'val', 'test')
                      for step in cfg[f'{loader}_dataloader'].dataset.pipeline
                      if step['type'] == 'Resize'}
            assert scales == {(320, 320)}
            continue
        assert _unscoped(cfg[key]) == _unscoped(base[key]), key
    assert cfg.custom_imports.imports == ['sn2_det', 'sn2_det.apis.pretrained_check']
    assert cfg.runner_type == 'CheckedRunner'  # as every shipped config
    assert 'find_unused_parameters' not in cfg


@pytest.mark.parametrize('star,config', sorted(STAR.items()))
def test_v2_star_is_the_v2_config_with_a_few_backbone_keys(star, config):
    """The V2* config inherits the V2 one and changes only the backbone's star keys,
    its split and its weights, which the ImageNet pretraining config makes."""
    assert f"_base_ = './{Path(config).name}'" in (ROOT / star).read_text()
    a, b = _cfg(star).to_dict(), _cfg(config).to_dict()
    backbone_a, backbone_b = a['model'].pop('backbone'), b['model'].pop('backbone')
    assert a == b
    changed = {k for k in backbone_a if backbone_a[k] != backbone_b.get(k)}
    assert changed == {'star', 'star_act', 'star_proj', 'downsample_split', 'init_cfg'}
    width = backbone_a['widen_factor']
    pretrain = _cfg(f'configs/pretrain/shufflenet_v2_star_{width}x_imagenet.py')
    for key in ('star', 'star_act', 'star_proj', 'downsample_split', 'widen_factor'):
        built = MODELS.build(dict(backbone_a, init_cfg=None))
        reference = MODELS.build(dict(pretrain.model.backbone.to_dict(), init_cfg=None,
                                      out_indices=(0,)))
        assert getattr(built, key, backbone_a[key]) == getattr(reference, key), key
    assert {k: pretrain.model.data_preprocessor[k] for k in IMAGENET_RGB} == IMAGENET_RGB
    assert backbone_a['init_cfg']['checkpoint'] == \
        f'checkpoints/shufflenet_v2_star_{width}x_imagenet.pth'


def _batch(with_masks: bool, h=128, w=160):
    torch.manual_seed(0)
    samples = []
    for boxes, labels in (([[10., 20., 90., 110.], [70., 30., 150., 120.]], [0, 1]),
                          ([[30., 40., 100., 100.]], [2])):
        sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                             pad_shape=(h, w), batch_input_shape=(h, w),
                                             scale_factor=(1.0, 1.0)))
        gt = InstanceData(bboxes=torch.tensor(boxes), labels=torch.tensor(labels))
        if with_masks:
            masks = np.zeros((len(boxes), h, w), np.uint8)
            for mask, (x1, y1, x2, y2) in zip(masks, boxes):
                mask[int(y1):int(y2), int(x1):int(x2)] = 1
            gt.masks = BitmapMasks(masks, h, w)
        sample.gt_instances = gt
        samples.append(sample)
    return dict(inputs=[torch.randint(0, 255, (3, h, w), dtype=torch.uint8)] * 2,
                data_samples=samples)


def _dense_head(model):
    return getattr(model, 'rpn_head', None) or model.bbox_head


def _v2_fast_star_slow():
    for config in CONFIGS:
        yield pytest.param(config, marks=(pytest.mark.slow,) if config in STAR else ())


@pytest.mark.parametrize('config', list(_v2_fast_star_slow()))
def test_builds_gives_what_the_family_needs_and_every_parameter_learns(config):
    """The backbone's outputs feed the neck (channels) at the strides the head's
    priors are laid at; one training step reaches every trainable parameter (else
    DDP without find_unused_parameters fails)."""
    cfg = _cfg(config)
    stride = SWAP[STAR.get(config, config)][2]
    model = MODELS.build(cfg.model).train()
    backbone = model.backbone
    assert list(backbone.out_channels) == list(cfg.model.neck.in_channels)
    assert backbone.out_strides[0] == stride
    assert _dense_head(model).prior_generator.strides[0][0] == stride
    if 'ssdlite' in config:  # stride 16 and a wide stride-32 map, then 4 extra levels
        assert tuple(backbone.out_strides) == (16, 32)
        assert backbone.out_channels[1] == 1024
        with torch.no_grad():
            maps = model.neck(backbone(torch.zeros(2, 3, 320, 320)))
        assert [m.shape[-1] for m in maps] == [20, 10, 5, 3, 2, 1]
        assert [m.shape[1] for m in maps] == list(cfg.model.bbox_head.in_channels)
    else:
        assert tuple(backbone.out_strides) == (8, 16, 32)
    MessageHub.get_current_instance().update_info('iter', 0)  # YOLOX's resizing reads it
    size = (320, 320) if 'ssdlite' in config else (128, 160)
    batch = model.data_preprocessor(_batch('mask' in config, *size), training=True)
    losses = model(**batch, mode='loss')
    total = sum(sum(v) if isinstance(v, list) else v
                for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert [n for n, p in model.named_parameters()
            if p.requires_grad and p.grad is None] == []


def _torchvision_weights(width: float, tmp_path: Path) -> str:
    """torchvision's ImageNet ShuffleNet V2 (random weights in its layout), converted
    as the configs' comments say (tools/convert_weights.py)."""
    src = tmp_path / 'tv.pth'
    torch.save(randomize(TorchvisionLayoutNet(width)).state_dict(), src)
    dst = tmp_path / 'converted.pth'
    convert_checkpoint_file(str(src), str(dst))
    return str(dst)


@pytest.mark.parametrize('config', sorted(SWAP))
def test_the_named_imagenet_weights_load_with_their_normalisation(config, tmp_path):
    cfg = _cfg(config)
    with pytest.raises(PretrainedWeightsError, match='does not exist'):
        check_pretrained_backbone(cfg)  # as shipped, before the weights are made
    cfg.model.backbone.init_cfg.checkpoint = _torchvision_weights(
        cfg.model.backbone.widen_factor, tmp_path)
    check_pretrained_backbone(cfg)
    backbone = MODELS.build(cfg.model.backbone)
    backbone.init_weights()  # strict: refuses weights of another split or width
    base = Config.fromfile(MMDET_CONFIGS / SWAP[config][0])
    mmdet_norm = {k: base.model.data_preprocessor.get(k) for k in IMAGENET_RGB}
    if mmdet_norm != IMAGENET_RGB:  # the base's own input is refused with these weights
        cfg.model.data_preprocessor.update(
            {k: v for k, v in mmdet_norm.items() if v is not None})
        for k, v in mmdet_norm.items():
            if v is None:
                cfg.model.data_preprocessor.pop(k, None)
        with pytest.raises(PretrainedWeightsError, match='model.data_preprocessor'):
            check_pretrained_backbone(cfg)


def test_the_comparison_budget_is_one_for_every_family(tmp_path):
    """Same backbone (0.5x, from scratch), data, pipeline, batch, epochs and
    optimiser in every family's toy config; the toy's classes, no SyncBN, no
    256-channel heads."""
    budget = Budget(epochs=3)
    keys = ('train_dataloader', 'val_dataloader', 'train_cfg', 'optim_wrapper',
            'param_scheduler', 'custom_hooks')
    shared = None
    for family in FAMILIES:
        cfg = toy_config(family, budget, str(tmp_path), str(tmp_path / family))
        assert cfg.model.backbone.widen_factor == 0.5
        assert cfg.model.backbone.init_cfg is None
        assert cfg.model.backbone.frozen_stages == -1
        assert not cfg.model.backbone.get('star')
        these = {k: cfg[k] for k in keys}
        assert shared is None or these == shared, family
        shared = these
        text = json.dumps(cfg.model.to_dict())
        assert '"num_classes": 80' not in text and 'SyncBN' not in text
        assert '"feat_channels": 256' not in text and '"fc_out_channels": 1024' not in text
    assert shared['train_cfg']['max_epochs'] == 3
    assert shared['custom_hooks'] == []


@pytest.mark.slow
@pytest.mark.parametrize('family', list(FAMILIES))
def test_every_toy_detector_trains_a_step(family, tmp_path):
    """The channels the comparison rewrites (0.5x backbone, 64-channel heads) fit."""
    cfg = toy_config(family, Budget(), str(tmp_path), str(tmp_path / family))
    model = MODELS.build(cfg.model).train()
    losses = model(**model.data_preprocessor(_batch(False, 256, 256), training=True),
                   mode='loss')
    total = sum(sum(v) if isinstance(v, list) else v
                for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)


def test_ssd_predicts_with_mmdets_own_head_settings():
    """mmdet 3.3.0's SSDHead cannot predict (no loss_cls); the subclass the SSDLite
    configs use predicts as SSD's softmax does."""
    from mmdet.models.dense_heads import SSDHead
    cfg = _cfg('configs/swap/ssdlite_sn2-1.0x_8xb24-600e_coco.py')
    model = MODELS.build(cfg.model).eval()
    torch.manual_seed(0)
    for param in model.bbox_head.cls_convs.parameters():  # confident classes
        param.data.normal_(0, 1)
    data = model.data_preprocessor(_batch(False, 320, 320), training=False)
    with torch.no_grad():
        metas = [s.metainfo for s in data['data_samples']]
        feats = model.extract_feat(data['inputs'])
        cls_scores, bbox_preds = model.bbox_head(feats)
        plain = SSDHead.__new__(SSDHead)
        plain.__dict__.update({k: v for k, v in model.bbox_head.__dict__.items()
                               if k != 'loss_cls'})
        with pytest.raises(AttributeError, match='loss_cls'):
            plain.predict_by_feat(cls_scores, bbox_preds, batch_img_metas=metas)
        results = model.bbox_head.predict_by_feat(cls_scores, bbox_preds,
                                                  batch_img_metas=metas, rescale=False)
    classes = model.bbox_head.cls_out_channels  # 80 and the background
    scores = torch.cat([c[0].permute(1, 2, 0).reshape(-1, classes) for c in cls_scores])
    assert len(results[0].bboxes) == len(results[0].scores) > 0
    best = scores.softmax(-1)[:, :-1].max().item()  # the top box survives NMS
    assert results[0].scores.max() == pytest.approx(best)


# --- two processes, as users train ---------------------------------------------------

@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    """The toy shapes at 64x64 under COCO's file and class names, with a box-shaped
    polygon per object for Mask R-CNN."""
    coco = tmp_path_factory.mktemp('coco')
    tiny_toy_and_coco(tmp_path_factory.mktemp('toy'), coco)
    return coco


def _small(config: str, cfg: Config, weights: str) -> list:
    """--cfg-options: 2 images a process, 2 epochs (RTMDet switches its pipeline after
    the first), no validation, the weights. SSDLite repeats its data once, not 5
    times."""
    options = ['train_dataloader.batch_size=2', 'val_dataloader=None', 'val_cfg=None',
               'val_evaluator=None', 'train_cfg.max_epochs=2',
               f'model.backbone.init_cfg.checkpoint={weights}']
    if 'rtmdet' in config:
        options.append('custom_hooks.1.switch_epoch=1')
    if 'ssdlite' in config:
        options.append('train_dataloader.dataset.times=1')
    return options


@pytest.mark.slow
@pytest.mark.parametrize('config', CONFIGS)
def test_dist_train_two_processes_default_ddp(config, tmp_path, coco_root):
    cfg = _cfg(config)
    weights = write_backbone_checkpoint(cfg, tmp_path / 'imagenet.pth')
    work = tmp_path / 'work'
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1',
               PYTHONPATH=f'{ROOT}{os.pathsep}{ROOT / "tests"}', PORT=free_port())
    out = subprocess.run(
        ['bash', 'tools/dist_train.sh', config, '2', '--data-root', str(coco_root),
         '--work-dir', str(work), '--cfg-options', *_small(config, cfg, weights)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert 'find_unused_parameters=True' not in log
    assert sorted(work.glob('epoch_2.pth')), log[-2000:]
    if 'yolox' in config:  # mmdet's mode switch ran (its last 15 epochs: all of them)
        assert 'No mosaic and mixup aug now!' in log
    if 'rtmdet' in config:  # and mmdet's SyncBN ran as BN (torch's refuses CPU modules)
        assert 'Switch pipeline now!' in log
        assert 'SyncBN layers run as BN on CPU processes' in log


# --- the comparison tool -------------------------------------------------------------

@pytest.mark.slow
def test_compare_detectors_tool_on_a_tiny_budget(tmp_path):
    """Two families, one epoch of 16 images: one table, the same images seen by
    both, every figure measured, the picture written; Light-Head also through
    onnxruntime."""
    work = tmp_path / 'work'
    out = subprocess.run(
        [sys.executable, 'tools/compare_detectors.py', '--families', 'lighthead',
         'ssdlite', '--epochs', '1', '--num-train', '16', '--num-val', '4',
         '--data-root', str(tmp_path / 'toy'), '--work-dir', str(work)],
        cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT)),
        capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    assert '| Light-Head R-CNN |' in out.stdout and '| SSDLite |' in out.stdout
    assert 'not on COCO' in out.stdout
    result = json.loads((work / 'comparison.json').read_text())
    rows = {r['family']: r for r in result['rows']}
    assert rows['lighthead']['images_seen'] == rows['ssdlite']['images_seen'] == 16
    for row in rows.values():
        assert 0 <= row['bbox_mAP'] <= 1 and row['torch_ms'] > 0
        assert row['s_per_iter'] > 0 and row['params'] > 0 and row['macs'] > 0
    assert rows['lighthead']['ort_ms'] > 0 and rows['ssdlite']['ort_ms'] is None
    assert (work / 'speed_vs_mmap.png').stat().st_size > 1000
    # a second call reuses the finished families
    again = subprocess.run(
        [sys.executable, 'tools/compare_detectors.py', '--families', 'ssdlite',
         '--epochs', '1', '--num-train', '16', '--num-val', '4', '--data-root',
         str(tmp_path / 'toy'), '--work-dir', str(work)],
        cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT)),
        capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and 'Epoch(train)' not in again.stdout + again.stderr


def test_compare_detectors_names_an_unknown_family():
    out = subprocess.run([sys.executable, 'tools/compare_detectors.py', '--families',
                          'yolov8'], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert out.returncode == 2
    assert "invalid choice: 'yolov8'" in out.stderr and 'rtmdet-tiny' in out.stderr

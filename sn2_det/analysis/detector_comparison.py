"""Detectors side by side on one budget (``tools/compare_detectors.py``).

Each detector family of ``configs/swap`` (and Light-Head R-CNN, Faster R-CNN + FPN,
RetinaNet) is trained with the same ShuffleNet V2 0.5x backbone from scratch on the
generated toy shapes (:mod:`sn2_det.datasets.toy_shapes`), on one budget: the same
images (resized to the same size, flipped, nothing else), the same batch size and
number of epochs (so the same number of images seen), the same optimiser and
schedule (AdamW with warm-up and cosine decay, the toy config's, which learns from
scratch in minutes), no EMA. What each family keeps of its config: its detector,
neck, heads, assigners, losses and test settings (mmdet's as shipped, with the
number of classes set to the toy's three and the neck's input channels to the
backbone's). Made toy-sized as the toy Light-Head config is (a 2-core CPU trains
mmdet's 256-channel heads at a few seconds an iteration): the 256-channel FPNs and
heads (RetinaNet, FCOS, GFL, Faster R-CNN) at ``Budget.head_channels`` (64) and
Faster R-CNN's FC of 1024 at 256; the two-stage detectors with the toy Light-Head's
proposal counts (300 / 100, 128 RoIs an image). RTMDet-tiny's, YOLOX's and
SSDLite's heads (64-96 channels, depthwise) stay as mmdet ships them. What every
family loses, for the budget to be one: mmdet's family-specific data pipelines and
their hooks (Mosaic / MixUp and YOLOX's mode switch, RTMDet's pipeline switch, SSD's
Expand / crop), multi-scale batches, EMA, SyncBN (BN in one process).

Per family: COCO bbox mmAP and AP small / medium / large on the held-out split
(mmdet's CocoMetric), training seconds per iteration (the median of mmengine's
logged iteration times, data loading included), inference milliseconds per image
(PyTorch, the model's ``test_step`` on held-out images one at a time, pre- and
post-processing included; onnxruntime for Light-Head R-CNN, the one detector the
project exports, on the exported graph of :mod:`sn2_det.deploy`), parameters, and
multiply-adds (FLOPs, :mod:`sn2_det.analysis.complexity`) at the toy size with the
heads' final predictors zeroed (the second stage on its full proposal count, as the
model index counts them).

Mask R-CNN is not a row: the toy shapes have boxes, not masks; its box branch is
Faster R-CNN's.
"""
import copy
import json
import os
import os.path as osp
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, Sequence

import numpy as np
import torch

from ..datasets.toy_shapes import CLASSES, generate_toy_shapes
from ..models.backbones.shufflenet_v2_weights import TRAINED_INPUT
from ..utils.config import build_in_mmdet_scope, read_config
from ..utils.errors import ConfigError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# name: (row label, config whose detector is compared)
FAMILIES = {
    'lighthead': ('Light-Head R-CNN', 'configs/toy/lighthead_sn2_toy.py'),
    'faster-rcnn': ('Faster R-CNN + FPN',
                    'configs/swap/faster-rcnn_sn2-1.0x_fpn_1x_coco.py'),
    'retinanet': ('RetinaNet', 'configs/swap/retinanet_sn2-1.0x_fpn_1x_coco.py'),
    'fcos': ('FCOS', 'configs/swap/fcos_sn2-1.0x_fpn_gn-head_1x_coco.py'),
    'gfl': ('GFL (NanoDet-like)', 'configs/swap/gfl_sn2-1.0x_fpn_320_1x_coco.py'),
    'ssdlite': ('SSDLite', 'configs/swap/ssdlite_sn2-1.0x_8xb24-600e_coco.py'),
    'yolox-nano': ('YOLOX-nano', 'configs/swap/yolox_nano_sn2-0.5x_8xb8-300e_coco.py'),
    'yolox-tiny': ('YOLOX-tiny', 'configs/swap/yolox_tiny_sn2-1.0x_8xb8-300e_coco.py'),
    'rtmdet-tiny': ('RTMDet-tiny',
                    'configs/swap/rtmdet_tiny_sn2-1.0x_8xb32-300e_coco.py'),
}
FPN_CHANNELS = 256  # mmdet's FPN and head width
METRICS = ('bbox_mAP', 'bbox_mAP_s', 'bbox_mAP_m', 'bbox_mAP_l')


@dataclass
class Budget:
    """What every family trains and is timed with."""
    epochs: int = 6
    batch_size: int = 8
    image_size: int = 256
    lr: float = 2e-3
    widen_factor: float = 0.5
    head_channels: int = 64
    threads: int = 2
    timed_images: int = 20
    workers: int = 1


def check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ConfigError(f'unknown detector family {family!r}; the families are: '
                          f'{", ".join(FAMILIES)}')


def _walk(node, fn):
    """Apply ``fn`` to every dict inside ``node`` (lists and tuples included)."""
    if isinstance(node, dict):
        fn(node)
        for value in node.values():
            _walk(value, fn)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _walk(value, fn)


def _replace_prefix_channels(node, old: Sequence[int], new: Sequence[int]):
    """Every ``in_channels`` / ``out_channels`` sequence starting with the backbone's
    channels ``old`` gets ``new`` in their place (FPNs, PAFPNs, SSD's neck and head)."""
    n = len(old)

    def fix(d):
        for key in ('in_channels', 'out_channels'):
            value = d.get(key)
            if isinstance(value, (list, tuple)) and list(value[:n]) == list(old):
                d[key] = [*new, *value[n:]]
    _walk(node, fix)


def _num_classes(node, count: int):
    def fix(d):
        if 'num_classes' in d:
            d['num_classes'] = count
    _walk(node, fix)


def _sync_bn_to_bn(node):
    def fix(d):
        if d.get('type') == 'SyncBN':
            d['type'] = 'BN'
    _walk(node, fix)


def _toy_width(node, width: int):
    """The 256-channel FPNs and heads (and the two-stage FC of 1024) at ``width``
    (and 4x ``width``), as the toy Light-Head config lightens its head; narrower ones
    (RTMDet-tiny, YOLOX, SSDLite, Light-Head) stay as they are."""
    def fix(d):
        for key in ('in_channels', 'out_channels', 'feat_channels'):
            if d.get(key) == FPN_CHANNELS:
                d[key] = width
        if d.get('fc_out_channels') == 4 * FPN_CHANNELS:
            d['fc_out_channels'] = 4 * width
    _walk(node, fix)


def _toy_proposals(model: dict):
    """A two-stage detector's proposal counts and sampled RoIs as the toy Light-Head
    config has them (300 / 100 proposals in training / testing, 128 RoIs an image)."""
    train, test = model.get('train_cfg') or {}, model.get('test_cfg') or {}
    if 'rpn_proposal' in train:
        train['rpn_proposal'].update(nms_pre=1000, max_per_img=300)
        train['rcnn']['sampler']['num'] = 128
    if isinstance(test.get('rpn'), dict):
        test['rpn'].update(nms_pre=600, max_per_img=100)


def _backbone_channels(backbone: dict) -> List[int]:
    built = build_in_mmdet_scope(dict(backbone, init_cfg=None))
    return list(built.out_channels)


def toy_config(family: str, budget: Budget, data_root: str, work_dir: str):
    """The family's config (``FAMILIES``) changed to the budget (module docstring)."""
    check_family(family)
    cfg = read_config(osp.join(ROOT, FAMILIES[family][1]))
    model = cfg.model.to_dict()
    old_channels = _backbone_channels(model['backbone'])
    backbone = dict(model['backbone'])
    for key in ('init_cfg', 'frozen_stages', 'norm_eval', 'norm_cfg', 'star', 'star_act',
                'star_proj', 'downsample_split'):
        backbone.pop(key, None)
    backbone.update(type='ShuffleNetV2', widen_factor=budget.widen_factor,
                    frozen_stages=-1, norm_eval=False,
                    norm_cfg=dict(type='BN', requires_grad=True), init_cfg=None)
    model['backbone'] = backbone
    new_channels = _backbone_channels(backbone)
    rest = {k: v for k, v in model.items() if k != 'backbone'}
    _replace_prefix_channels(rest, old_channels, new_channels)
    _num_classes(rest, len(CLASSES))
    _sync_bn_to_bn(rest)
    _toy_width(rest, budget.head_channels)
    _toy_proposals(rest)
    model.update(rest)
    # RGB ImageNet mean/std, as the toy Light-Head (and torchvision's weights) have it
    model['data_preprocessor'] = dict(model['data_preprocessor'],
                                      **TRAINED_INPUT['torchvision'], batch_augments=None)
    cfg.model = model

    size = (budget.image_size, budget.image_size)
    root = data_root.rstrip('/') + '/'
    metainfo = dict(classes=CLASSES)
    train_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=size, keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackDetInputs'),
    ]
    test_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=size, keep_ratio=True),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                              'img_shape', 'scale_factor')),
    ]
    cfg.train_dataloader = dict(
        batch_size=budget.batch_size, num_workers=budget.workers,
        persistent_workers=budget.workers > 0, batch_sampler=None,
        sampler=dict(type='DefaultSampler', shuffle=True),
        dataset=dict(type='CocoDataset', data_root=root, metainfo=metainfo,
                     ann_file='annotations/instances_train.json',
                     data_prefix=dict(img='train/'),
                     filter_cfg=dict(filter_empty_gt=False, min_size=0),
                     pipeline=train_pipeline))
    cfg.val_dataloader = dict(
        batch_size=4, num_workers=budget.workers, persistent_workers=budget.workers > 0,
        drop_last=False, sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(type='CocoDataset', data_root=root, metainfo=metainfo,
                     ann_file='annotations/instances_val.json',
                     data_prefix=dict(img='val/'), test_mode=True,
                     pipeline=test_pipeline))
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator = dict(type='CocoMetric', metric='bbox',
                             ann_file=root + 'annotations/instances_val.json')
    cfg.test_evaluator = cfg.val_evaluator
    # validation once, after training (the runner's val loop, called by the tool)
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=budget.epochs,
                         val_interval=budget.epochs + 1)
    cfg.val_cfg = dict(type='ValLoop')
    cfg.test_cfg = dict(type='TestLoop')
    cfg.optim_wrapper = dict(type='OptimWrapper',
                             optimizer=dict(type='AdamW', lr=budget.lr, weight_decay=1e-4),
                             clip_grad=dict(max_norm=35, norm_type=2))
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
        dict(type='CosineAnnealingLR', T_max=budget.epochs, eta_min_ratio=0.05,
             by_epoch=True, begin=0, end=budget.epochs, convert_to_iter_based=True),
    ]
    cfg.auto_scale_lr = dict(enable=False, base_batch_size=budget.batch_size)
    cfg.custom_hooks = []
    cfg.default_hooks = dict(
        timer=dict(type='IterTimerHook'), logger=dict(type='LoggerHook', interval=5),
        param_scheduler=dict(type='ParamSchedulerHook'),
        checkpoint=dict(type='CheckpointHook', interval=budget.epochs, max_keep_ckpts=1),
        sampler_seed=dict(type='DistSamplerSeedHook'),
        visualization=dict(type='DetVisualizationHook'))
    # a visualizer of its own (mmengine keeps one instance a name per process)
    cfg.visualizer = dict(type='DetLocalVisualizer',
                          name=f'compare_{family}_{time.time_ns()}',
                          vis_backends=[dict(type='LocalVisBackend')])
    cfg.pop('tta_model', None)
    cfg.pop('tta_pipeline', None)
    cfg.load_from, cfg.resume = None, False
    cfg.randomness = dict(seed=0)
    cfg.env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork'),
                       dist_cfg=dict(backend='gloo'))
    cfg.launcher = 'none'
    cfg.work_dir = work_dir
    return cfg


def _logged_iteration_seconds(log_dir: str) -> List[float]:
    path = osp.join(log_dir, 'vis_data', 'scalars.json')
    times = []
    if not osp.isfile(path):
        return times
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            if 'loss' in row and 'time' in row:
                times.append(row['time'])
    return times


def _held_out_batches(cfg, count: int) -> list:
    """The first ``count`` held-out images through the test pipeline, one a batch."""
    from mmengine.dataset import Compose
    from mmengine.registry import DefaultScope
    ann = json.load(open(cfg.val_evaluator['ann_file']))
    root = cfg.val_dataloader['dataset']['data_root']
    with DefaultScope.overwrite_default_scope('mmdet'):
        pipeline = Compose(cfg.val_dataloader['dataset']['pipeline'])
        batches = []
        for image in ann['images'][:count]:
            data = pipeline(dict(img_path=osp.join(root, 'val', image['file_name']),
                                 img_id=image['id'], instances=[]))
            batches.append(dict(inputs=[data['inputs']],
                                data_samples=[data['data_samples']]))
    return batches


def _median_ms(fn, items: list, warmup: int = 2) -> float:
    for item in items[:warmup]:
        fn(item)
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def torch_ms_per_image(model, batches: list) -> float:
    model.eval()
    with torch.no_grad():
        return _median_ms(model.test_step, batches)


def onnxruntime_ms_per_image(model, batches: list, image_size: int, path: str,
                             threads: int) -> float:
    """The Light-Head detector exported whole (:func:`sn2_det.deploy.export_detector`)
    and run by onnxruntime on the same images (raw pixels, already resized)."""
    from ..deploy import export_detector
    from ..deploy.arm_benchmark import OnnxRuntimeModel
    export_detector(copy.deepcopy(model).eval(), path, (image_size, image_size))
    session = OnnxRuntimeModel(path, threads=threads)
    feeds = []
    for batch in batches:
        image = batch['inputs'][0].float().numpy()
        padded = np.zeros((3, image_size, image_size), np.float32)
        padded[:, :image.shape[1], :image.shape[2]] = image
        feeds.append({'image': padded[None]})
    return _median_ms(session.run, feeds)


def complexity(cfg, image_size: int) -> Dict[str, int]:
    from .benchmark import build_detector
    from .complexity import count_params, detector_complexity
    model = build_detector(copy.deepcopy(cfg))
    return dict(params=count_params(model),
                macs=detector_complexity(model, (image_size, image_size))['macs'])


def run_family(family: str, budget: Budget, data_root: str, work_dir: str) -> dict:
    """Train, evaluate and time one family; the row, also written to
    ``work_dir/<family>/result.json``."""
    from mmengine.runner import Runner
    torch.set_num_threads(budget.threads)
    family_dir = osp.join(work_dir, family)
    cfg = toy_config(family, budget, data_root, family_dir)
    runner = Runner.from_cfg(cfg)
    start = time.perf_counter()
    runner.train()
    train_s = time.perf_counter() - start
    metrics = runner.val()
    iters = runner.iter
    logged = _logged_iteration_seconds(runner.log_dir)
    model = runner.model
    batches = _held_out_batches(cfg, budget.timed_images)
    row = dict(family=family, label=FAMILIES[family][0], config=FAMILIES[family][1],
               iterations=iters, images_seen=iters * budget.batch_size,
               train_seconds=train_s,
               s_per_iter=statistics.median(logged[1:] or logged) if logged
               else train_s / max(iters, 1),
               torch_ms=torch_ms_per_image(model, batches), ort_ms=None,
               **{k: float(metrics.get(f'coco/{k}', float('nan'))) for k in METRICS},
               **complexity(cfg, budget.image_size))
    if family == 'lighthead':
        row['ort_ms'] = onnxruntime_ms_per_image(
            model, batches, budget.image_size, osp.join(family_dir, 'lighthead.onnx'),
            budget.threads)
    with open(osp.join(family_dir, 'result.json'), 'w') as f:
        json.dump(dict(row, budget=asdict(budget)), f, indent=1)
    return row


def iteration_cost(family: str, budget: Budget, data_root: str, iterations: int = 3,
                   images: int = 5) -> dict:
    """What one family costs on this machine, without training it: CPU seconds of a
    training iteration (the median of ``iterations`` after one warm-up, data loading
    in the process) and CPU milliseconds of an inference (median of ``images``), on
    one thread. Process CPU time, not wall time, so that a shared machine's load
    does not count; on a free machine one thread's wall time is about this."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    torch.set_num_threads(1)
    cfg = toy_config(family, Budget(**dict(asdict(budget), workers=0)), data_root,
                     osp.join(data_root, 'unused'))
    from ..deploy.models import _quiet_mmengine
    with DefaultScope.overwrite_default_scope('mmdet'), _quiet_mmengine():
        model = build_in_mmdet_scope(cfg.model)
        model.init_weights()
        loader = iter(Runner.build_dataloader(cfg.train_dataloader, seed=0))
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
        model.train()
        train = []
        for _ in range(iterations + 1):
            start = time.process_time()
            model.train_step(next(loader), optim)
            train.append(time.process_time() - start)
        model.eval()
        infer = []
        with torch.no_grad():
            for batch in _held_out_batches(cfg, images + 1):
                start = time.process_time()
                model.test_step(batch)
                infer.append(time.process_time() - start)
    return dict(family=family, label=FAMILIES[family][0],
                cpu_s_per_iter=statistics.median(train[1:]),
                cpu_ms_per_image=1000 * statistics.median(infer[1:]),
                **complexity(cfg, budget.image_size))


def estimate_minutes(costs: Sequence[dict], budget: Budget, num_train: int,
                     num_val: int, overhead_s: float = 30) -> float:
    """Minutes of the whole comparison on one thread from :func:`iteration_cost`:
    every training iteration, the held-out evaluation and timing, and
    ``overhead_s`` a family (building, data loader start, FLOPs, the ONNX export)."""
    iters = budget.epochs * -(-num_train // budget.batch_size)
    seconds = sum(c['cpu_s_per_iter'] * iters
                  + c['cpu_ms_per_image'] / 1000 * (num_val + 2 * budget.timed_images)
                  + overhead_s for c in costs)
    return seconds / 60


def conditions(budget: Budget, rows: Sequence[dict], data_root: str) -> str:
    ann = json.load(open(osp.join(data_root, 'annotations', 'instances_train.json')))
    val = json.load(open(osp.join(data_root, 'annotations', 'instances_val.json')))
    iters = rows[0]['iterations'] if rows else 0
    return (f'Toy shapes (sn2_det.datasets.toy_shapes): {len(ann["images"])} training and '
            f'{len(val["images"])} held-out images, 3 classes. Every detector on '
            f'ShuffleNet V2 {budget.widen_factor}x trained from scratch, '
            f'{budget.image_size}x{budget.image_size} input (resize, flip), batch '
            f'{budget.batch_size}, {budget.epochs} epochs = {iters} iterations = '
            f'{iters * budget.batch_size} images seen, AdamW lr {budget.lr} (warm-up, '
            f'cosine), no EMA; speed with {budget.threads} threads on '
            f'{_machine()}, batch 1, pre- and post-processing included. This ranks '
            f'detectors on small synthetic data, not on COCO.')


def _machine() -> str:
    from ..deploy.arm_benchmark import machine_info
    info = machine_info()
    return f'{info["processor"] or info["machine"]} ({info["cpu_count"]} cores)'


def table(rows: Sequence[dict]) -> str:
    """The comparison as one markdown table."""
    def num(value, fmt):
        return '-' if value is None or value != value else format(value, fmt)
    lines = ['| detector | mmAP | AP small | AP medium | AP large | train s/iter | '
             'torch ms/img | onnxruntime ms/img | params M | GFLOPs |',
             '|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append(
            f"| {r['label']} | {num(r['bbox_mAP'], '.3f')} | {num(r['bbox_mAP_s'], '.3f')} "
            f"| {num(r['bbox_mAP_m'], '.3f')} | {num(r['bbox_mAP_l'], '.3f')} "
            f"| {num(r['s_per_iter'], '.2f')} | {num(r['torch_ms'], '.1f')} "
            f"| {num(r['ort_ms'], '.1f')} | {r['params'] / 1e6:.2f} "
            f"| {r['macs'] / 1e9:.2f} |")
    return '\n'.join(lines)


def plot(rows: Sequence[dict], out: str, title: str = '') -> None:
    """Inference ms per image (PyTorch; onnxruntime where measured) against mmAP."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=100)
    for r in rows:
        ax.scatter(r['torch_ms'], r['bbox_mAP'], color='#1f77b4')
        ax.annotate(r['label'], (r['torch_ms'], r['bbox_mAP']), textcoords='offset points',
                    xytext=(5, 4), fontsize=8)
        if r.get('ort_ms'):
            ax.scatter(r['ort_ms'], r['bbox_mAP'], color='#ff7f0e', marker='s')
            ax.annotate(f"{r['label']} (onnxruntime)", (r['ort_ms'], r['bbox_mAP']),
                        textcoords='offset points', xytext=(5, -10), fontsize=8)
    ax.set_xlabel('inference ms per image (blue: PyTorch, orange: onnxruntime)')
    ax.set_ylabel('bbox mmAP (held-out toy shapes)')
    ax.set_title(title or 'ShuffleNet V2 0.5x detectors on one budget (toy data, not COCO)',
                 fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def compare(families: Sequence[str], budget: Budget, data_root: str, work_dir: str,
            num_train: int = 600, num_val: int = 100, rerun: bool = False) -> dict:
    """Every family's row (a finished family's ``result.json`` of the same budget is
    reused unless ``rerun``), the table, its conditions and the picture."""
    for family in families:
        check_family(family)
    generate_toy_shapes(data_root, num_train=num_train, num_val=num_val,
                        image_size=(budget.image_size, budget.image_size))
    os.makedirs(work_dir, exist_ok=True)
    rows = []
    for family in families:
        saved = osp.join(work_dir, family, 'result.json')
        if not rerun and osp.isfile(saved):
            with open(saved) as f:
                row = json.load(f)
            if row.pop('budget', None) == asdict(budget):
                rows.append(row)
                continue
        rows.append(run_family(family, budget, data_root, work_dir))
    text = conditions(budget, rows, data_root)
    markdown = table(rows)
    picture = osp.join(work_dir, 'speed_vs_mmap.png')
    plot(rows, picture)
    with open(osp.join(work_dir, 'comparison.json'), 'w') as f:
        json.dump(dict(conditions=text, budget=asdict(budget), rows=rows,
                       python=platform.python_version(), torch=torch.__version__), f,
                  indent=1)
    with open(osp.join(work_dir, 'comparison.md'), 'w') as f:
        f.write(markdown + '\n\n' + text + '\n')
    return dict(rows=rows, table=markdown, conditions=text, picture=picture)

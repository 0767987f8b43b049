"""Every shipped detector config trains as users train it.

- every trainable parameter of every shipped backbone configuration, and of one
  detector of each config family, receives a gradient (mmengine's DDP wrapper,
  ``find_unused_parameters=False``, needs that);
- ``tools/dist_train.sh CONFIG 2`` (gloo) runs each family on a tiny generated
  dataset, the configs changed only in data paths, image size, the run's length and
  the path of the ImageNet weights they load (slow);
- the README's sequence at small scale: convert a checkpoint of the authors' layout
  with tools/convert_weights.py, train configs/lighthead_sn2.py on it, test (slow);
- the pretrained-weights refusals (sn2_det.apis.pretrained_check), also through
  mmdet's own tools/train.py;
- tools/slurm_train.sh / slurm_test.sh under a fake srun and scontrol (slow).
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.structures import InstanceData

import sn2_det  # noqa: F401
from sn2_det.apis.pretrained_check import PretrainedWeightsError, check_pretrained_backbone
from sn2_det.engine.cpu_distributed import slurm_environment

from helpers import free_port, tiny_toy_and_coco
from pretrained_weights import write_backbone_checkpoint
from reference_shufflenet import OfficialLayoutNet, randomize

ROOT = Path(__file__).resolve().parents[1]
DETECTOR_CONFIGS = sorted(
    str(p.relative_to(ROOT)) for pattern in
    ('configs/lighthead_sn2*.py', 'configs/table7/lighthead_*.py', 'configs/swap/*.py',
     'configs/toy/*.py') for p in ROOT.glob(pattern))
# One config of each family (the Light-Head SN2 / SN2* variants, one Table 7 cell per
# backbone, the swap configs, the toy config).
FAMILIES = ['configs/lighthead_sn2.py', 'configs/lighthead_sn2_star.py',
            'configs/lighthead_sn2_tv.py', 'configs/lighthead_sn2_authors.py',
            *[f'configs/table7/lighthead_{name}_140m.py' for name in
              ('xception', 'shufflenet_v1', 'mobilenet_v2', 'shufflenet_v2',
               'shufflenet_v2_star')],
            'configs/swap/faster-rcnn_sn2-1.0x_fpn_1x_coco.py',
            'configs/swap/retinanet_sn2-1.0x_fpn_1x_coco.py',
            'configs/toy/lighthead_sn2_toy.py']


def test_the_families_cover_every_shipped_detector_config():
    assert len(DETECTOR_CONFIGS) >= 27
    assert set(FAMILIES) <= set(DETECTOR_CONFIGS)


def _missing_grads(module) -> list:
    return [name for name, p in module.named_parameters()
            if p.requires_grad and p.grad is None]


@pytest.mark.parametrize('config', DETECTOR_CONFIGS)
def test_every_trainable_backbone_parameter_gets_a_gradient(config):
    cfg = Config.fromfile(str(ROOT / config))
    backbone = MODELS.build(cfg.model.backbone).train()
    outs = backbone(torch.rand(1, 3, 64, 64))
    assert len(outs) == len(backbone.out_indices)
    sum(out.mean() for out in outs).backward()
    assert _missing_grads(backbone) == []
    assert any(p.requires_grad for p in backbone.parameters())


def test_layers_past_the_deepest_output_are_not_built():
    cfg = Config.fromfile(str(ROOT / 'configs/lighthead_sn2.py'))
    backbone = MODELS.build(cfg.model.backbone)
    assert len(backbone.layers) == 3  # stage2..stage4, no conv5
    assert not any(k.startswith('layers.3.') for k in backbone.state_dict())
    mobile = MODELS.build(dict(type='StagedMobileNetV2', widen_factor=1.0,
                               out_indices=(1,)))
    assert mobile.layers == ['layer1', 'layer2', 'layer3', 'layer4', 'layer5']
    assert not hasattr(mobile, 'layer6') and not hasattr(mobile, 'conv2')


def test_whole_network_checkpoint_loads_strictly_into_a_truncated_backbone(tmp_path):
    cfg = Config.fromfile(str(ROOT / 'configs/lighthead_sn2.py'))
    path = write_backbone_checkpoint(cfg, tmp_path / 'w.pth')
    saved = torch.load(path, weights_only=True)['state_dict']
    assert any(k.startswith('layers.3.') for k in saved)  # conv5 in the file
    cfg.model.backbone.init_cfg.checkpoint = path
    backbone = MODELS.build(cfg.model.backbone)
    backbone.init_weights()
    own = backbone.state_dict()
    assert not any(k.startswith('layers.3.') for k in own)
    assert all(torch.equal(own[k], saved[k]) for k in own)
    saved['layers.2.0.branch_main.0.conv.weight'] = saved[
        'layers.2.0.branch_main.0.conv.weight'][:1]  # still strict inside the outputs
    torch.save(dict(state_dict=saved), path)
    with pytest.raises(ValueError, match='shape mismatches'):
        MODELS.build(cfg.model.backbone).init_weights()


def _batch(h=128, w=160):
    torch.manual_seed(0)
    samples = []
    for boxes, labels in (([[10., 20., 90., 110.], [70., 30., 150., 120.]], [0, 1]),
                          ([[30., 40., 100., 100.]], [2])):
        sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                             pad_shape=(h, w), scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(bboxes=torch.tensor(boxes),
                                           labels=torch.tensor(labels))
        samples.append(sample)
    return dict(inputs=[torch.randint(0, 255, (3, h, w), dtype=torch.uint8)] * 2,
                data_samples=samples)


@pytest.mark.parametrize('config', FAMILIES)
def test_every_trainable_detector_parameter_gets_a_gradient(config):
    """Heads included: nothing is built that the loss does not use."""
    cfg = Config.fromfile(str(ROOT / config))
    model = MODELS.build(cfg.model).train()
    losses = model(**model.data_preprocessor(_batch(), training=True), mode='loss')
    total = sum(sum(v) if isinstance(v, list) else v
                for k, v in losses.items() if 'loss' in k)
    total.backward()
    assert _missing_grads(model) == []


# --- the refusals -------------------------------------------------------------------

def test_frozen_layers_without_pretrained_weights_are_refused():
    cfg = Config.fromfile(str(ROOT / 'configs/lighthead_sn2.py'))
    cfg.model.backbone.init_cfg = None
    with pytest.raises(PretrainedWeightsError) as err:
        check_pretrained_backbone(cfg)
    text = str(err.value)
    for words in ('model.backbone freezes conv1, layers.0, the BN weights '
                  '(norm_cfg.requires_grad=False), the BN statistics (norm_eval=True), '
                  'but model.backbone.init_cfg (None) loads no pretrained weights',
                  'tools/convert_weights.py', 'tools/extract_backbone.py',
                  'model.backbone.frozen_stages=-1',
                  'model.backbone.norm_cfg.requires_grad=True'):
        assert words in text, words
    # the keys it names train from scratch, and pass
    cfg.merge_from_dict({'model.backbone.frozen_stages': -1,
                         'model.backbone.norm_eval': False,
                         'model.backbone.norm_cfg.requires_grad': True})
    check_pretrained_backbone(cfg)


@pytest.mark.parametrize('config,how', [
    ('configs/lighthead_sn2.py', 'tools/convert_weights.py SRC.pth '
                                 'checkpoints/shufflenet_v2_1.0x_official.pth'),
    ('configs/table7/lighthead_xception_140m.py',
     'configs/pretrain/table7/xception_140m_imagenet.py'),
    ('configs/lighthead_sn2_star.py', 'configs/pretrain/shufflenet_v2_star_1.0x_imagenet.py'),
])
def test_a_missing_checkpoint_says_how_to_make_it(config, how):
    cfg = Config.fromfile(str(ROOT / config))
    with pytest.raises(PretrainedWeightsError) as err:
        check_pretrained_backbone(cfg)
    text = str(err.value)
    assert 'model.backbone.init_cfg.checkpoint' in text and how in text
    assert 'model.backbone.init_cfg=None model.backbone.frozen_stages=-1' in text


def _official_checkpoint(path: Path) -> Path:
    """A checkpoint in the layout of the authors' ImageNet ShuffleNet V2 1.0x."""
    torch.save({'state_dict': randomize(OfficialLayoutNet(1.0)).state_dict()}, path)
    return path


def _convert(src: Path, dst: Path) -> str:
    out = subprocess.run([sys.executable, str(ROOT / 'tools/convert_weights.py'),
                          str(src), str(dst)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    return str(dst)


def test_weights_trained_on_other_input_are_refused(tmp_path):
    """The authors' weights (raw BGR) in a config normalising as ImageNet RGB."""
    weights = _convert(_official_checkpoint(tmp_path / 'official.pth.tar'),
                       tmp_path / 'sn2.pth')
    cfg = Config.fromfile(str(ROOT / 'configs/lighthead_sn2.py'))
    cfg.model.backbone.init_cfg.checkpoint = weights
    check_pretrained_backbone(cfg)  # as shipped: the authors' input
    cfg.model.data_preprocessor.update(mean=[123.675, 116.28, 103.53],
                                       std=[58.395, 57.12, 57.375], bgr_to_rgb=True)
    with pytest.raises(PretrainedWeightsError) as err:
        check_pretrained_backbone(cfg)
    text = str(err.value)
    assert 'model.data_preprocessor' in text
    assert 'mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0], bgr_to_rgb=False' in text


@pytest.fixture(scope='module')
def tiny_roots(tmp_path_factory):
    """The toy shapes at 64x64 as the toy config reads them, and under COCO's file
    and class names for the COCO configs."""
    toy, coco = tmp_path_factory.mktemp('toy'), tmp_path_factory.mktemp('coco')
    tiny_toy_and_coco(toy, coco)
    return dict(toy=toy, coco=coco)


def _env(**extra) -> dict:
    return dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1',
                PYTHONPATH=f'{ROOT}{os.pathsep}{ROOT / "tests"}', **extra)


def _small(cfg: Config, weights) -> list:
    """--cfg-options: 64x64 images, two iterations, no validation, the weights."""
    options = ['train_dataloader.dataset.pipeline.2.scale=(64,64)',
               'val_dataloader=None', 'val_cfg=None', 'val_evaluator=None']
    if cfg.train_cfg.type == 'IterBasedTrainLoop':
        options.append('train_cfg.max_iters=2')
    else:
        options.append('train_cfg.max_epochs=1')
    if weights:
        options.append(f'model.backbone.init_cfg.checkpoint={weights}')
    return options


def _weights_for(config: str, cfg: Config, tmp_path: Path):
    init_cfg = cfg.model.backbone.get('init_cfg')
    if not init_cfg:
        return None
    if config == 'configs/lighthead_sn2.py':  # the README's path: convert the authors'
        return _convert(_official_checkpoint(tmp_path / 'official.pth.tar'),
                        tmp_path / 'converted.pth')
    return write_backbone_checkpoint(cfg, tmp_path / 'imagenet.pth')


@pytest.mark.slow
@pytest.mark.parametrize('config', FAMILIES)
def test_dist_train_two_processes_default_ddp(config, tmp_path, tiny_roots):
    """tools/dist_train.sh CONFIG 2 with mmengine's DDP defaults; for
    configs/lighthead_sn2.py also tools/test.py on the checkpoint it wrote."""
    cfg = Config.fromfile(str(ROOT / config))
    assert 'find_unused_parameters' not in cfg
    root = tiny_roots['toy' if 'toy' in config else 'coco']
    work = tmp_path / 'work'
    out = subprocess.run(
        ['bash', 'tools/dist_train.sh', config, '2', '--data-root', str(root),
         '--work-dir', str(work), '--cfg-options',
         *_small(cfg, _weights_for(config, cfg, tmp_path))],
        cwd=ROOT, env=_env(PORT=free_port()), capture_output=True, text=True,
        timeout=900)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert 'find_unused_parameters=True' not in log  # mmengine's default, False
    checkpoints = sorted(work.glob('*.pth'))
    assert checkpoints, log[-2000:]
    if config != 'configs/lighthead_sn2.py':
        return
    test = subprocess.run(
        [sys.executable, 'tools/test.py', config, str(checkpoints[-1]), '--data-root',
         str(root), '--work-dir', str(tmp_path / 'test'), '--cfg-options',
         'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False'],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert test.returncode == 0, (test.stdout + test.stderr)[-4000:]
    assert 'bbox_mAP' in test.stdout + test.stderr


def test_mmdet_train_tool_refuses_frozen_layers_without_weights(tmp_path, tiny_roots):
    """mmdet's own tools/train.py (shipped in mmdet's package) on the shipped toy
    config made to freeze its stem: PretrainedBackboneCheckHook stops it before the
    weights are initialised."""
    import mmdet
    tool = Path(mmdet.__file__).parent / '.mim' / 'tools' / 'train.py'
    assert tool.is_file()
    root = tiny_roots['toy']
    out = subprocess.run(
        [sys.executable, str(tool), 'configs/toy/lighthead_sn2_toy.py', '--work-dir',
         str(tmp_path / 'w'), '--cfg-options', 'model.backbone.frozen_stages=0',
         f'train_dataloader.dataset.data_root={root}/', 'val_dataloader=None',
         'val_cfg=None', 'val_evaluator=None', 'train_dataloader.num_workers=0',
         'train_dataloader.persistent_workers=False'],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    log = out.stdout + out.stderr
    assert out.returncode != 0
    assert 'PretrainedWeightsError' in log and 'model.backbone.init_cfg' in log, log[-3000:]
    assert 'Iter(train)' not in log and 'Epoch(train)' not in log


# --- Slurm ---------------------------------------------------------------------------

def test_slurm_environment_from_the_task_variables(tmp_path, monkeypatch):
    scontrol = tmp_path / 'scontrol'
    scontrol.write_text('#!/bin/sh\n[ "$1 $2 $3" = "show hostnames node[3-4]" ] && '
                        'printf "node3\\nnode4\\n"\n')
    scontrol.chmod(0o755)
    monkeypatch.setenv('PATH', f'{tmp_path}{os.pathsep}{os.environ["PATH"]}')
    env = dict(SLURM_PROCID='5', SLURM_NTASKS='8', SLURM_LOCALID='1',
               SLURM_NODELIST='node[3-4]')
    assert slurm_environment(env) == dict(RANK='5', WORLD_SIZE='8', LOCAL_RANK='1',
                                          MASTER_ADDR='node3', MASTER_PORT='29500')
    assert slurm_environment(dict(env, MASTER_ADDR='head', MASTER_PORT='1234'))[
        'MASTER_ADDR'] == 'head'
    with pytest.raises(RuntimeError, match='SLURM_PROCID'):
        slurm_environment({'SLURM_NTASKS': '2', 'SLURM_NODELIST': 'n'})


FAKE_SRUN = '''#!/usr/bin/env bash
# srun on one machine: --ntasks copies of the command with the task variables.
echo "srun $*" >> "$SRUN_LOG"
ntasks=1
while [ $# -gt 0 ]; do
  case "$1" in
    --ntasks=*) ntasks=${1#--ntasks=}; shift ;;
    -p) shift 2 ;;
    --*|-*) shift ;;
    *) break ;;
  esac
done
pids=()
for ((i = 0; i < ntasks; i++)); do
  SLURM_PROCID=$i SLURM_LOCALID=$i SLURM_NTASKS=$ntasks SLURM_NODELIST=localhost \\
    SLURM_JOB_ID=1 "$@" & pids+=($!)
done
code=0
for pid in "${pids[@]}"; do wait "$pid" || code=1; done
exit $code
'''


@pytest.mark.slow
def test_slurm_train_and_test_scripts_under_a_fake_srun(tmp_path, tiny_roots):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'srun').write_text(FAKE_SRUN)
    (bin_dir / 'scontrol').write_text('#!/bin/sh\necho 127.0.0.1\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = _env(PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}', GPUS='2',
               GPUS_PER_NODE='2', MASTER_PORT=free_port(),
               SRUN_LOG=str(tmp_path / 'srun.log'))
    cfg = Config.fromfile(str(ROOT / 'configs/toy/lighthead_sn2_toy.py'))
    work = tmp_path / 'work'
    out = subprocess.run(
        ['bash', 'tools/slurm_train.sh', 'gpu', 'toy', 'configs/toy/lighthead_sn2_toy.py',
         str(work), '--data-root', str(tiny_roots['toy']), '--cfg-options',
         *_small(cfg, None)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert 'Distributed launcher: slurm' in log and 'GPU number: 2' in log
    srun = (tmp_path / 'srun.log').read_text()
    assert '-p gpu --job-name=toy --gres=gpu:2 --ntasks=2' in srun
    assert '--launcher=slurm' in srun
    checkpoint = sorted(work.glob('*.pth'))[-1]
    out = subprocess.run(
        ['bash', 'tools/slurm_test.sh', 'gpu', 'toy', 'configs/toy/lighthead_sn2_toy.py',
         str(checkpoint), '--data-root', str(tiny_roots['toy']), '--work-dir',
         str(tmp_path / 'test'), '--cfg-options', 'test_dataloader.num_workers=0',
         'test_dataloader.persistent_workers=False'],
        cwd=ROOT, env=dict(env, MASTER_PORT=free_port()), capture_output=True,
        text=True, timeout=600)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert 'bbox_mAP' in log

"""Config loading, training and testing behind ``tools/train.py`` and ``tools/test.py``.

The flags follow mmdet's own tools (``--work-dir``, ``--resume``, ``--amp``,
``--auto-scale-lr``, ``--cfg-options``, ``--launcher``); additions: ``--data-root``
moves every path under the config's ``data_root`` (dataset roots and the COCO
evaluator's annotation file), and without CUDA distributed runs use gloo
(:mod:`sn2_det.engine.cpu_distributed`). The runner is built as mmdet's tools build
it: the config's ``runner_type`` (the shipped configs name
:class:`sn2_det.engine.runner.CheckedRunner`), else mmengine's ``Runner``.
"""
import logging
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import Runner

from mmdet.registry import RUNNERS

from ..engine.cpu_distributed import destroy_cpu_process_group, init_cpu_process_group
from ..engine.resume import latest_loadable_checkpoint
from ..utils.config import ConfigOptionsAction, read_config
from ..utils.errors import ConfigError, MissingFileError
from .class_check import check_class_counts
from .data_check import check_data_paths
from .model_check import check_model_config
from .pretrained_check import check_pretrained_backbone
from .run_check import check_run_settings


# mmdet's DumpDetResults accepts these file names only
PICKLE_SUFFIXES = ('.pkl', '.pickle')


def add_common_args(parser) -> None:
    parser.add_argument('config', help='config file')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument('--data-root', help="replace the config's data_root everywhere")
    parser.add_argument('--cfg-options', nargs='+', action=ConfigOptionsAction,
                        help='override config keys, e.g. model.backbone.widen_factor=1.5')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher for distributed runs')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def _replace_prefix(node, old: str, new: str):
    if isinstance(node, str):
        return new + node[len(old):] if node.startswith(old) else node
    if isinstance(node, dict):
        return type(node)({k: _replace_prefix(v, old, new) for k, v in node.items()})
    if isinstance(node, (list, tuple)):
        return type(node)(_replace_prefix(v, old, new) for v in node)
    return node


def set_data_root(cfg: Config, root: str) -> None:
    """Point every path under ``cfg.data_root`` at ``root`` instead."""
    old = cfg.get('data_root')
    if not old:
        raise ConfigError('the config has no data_root to replace')
    if not osp.isdir(root):
        raise MissingFileError(f'--data-root {root} is not a directory')
    new = root.rstrip('/') + '/' if old.endswith('/') else root.rstrip('/')
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader',
                'val_evaluator', 'test_evaluator'):
        if key in cfg:
            cfg[key] = _replace_prefix(cfg[key].to_dict() if hasattr(cfg[key], 'to_dict')
                                       else cfg[key], old, new)
    cfg.data_root = new


def load_config(config: str, work_dir: Optional[str] = None,
                data_root: Optional[str] = None, cfg_options: Optional[dict] = None,
                launcher: str = 'none') -> Config:
    cfg = read_config(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if data_root:
        set_data_root(cfg, data_root)
    cfg.launcher = launcher
    if work_dir:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    return cfg


def build_runner(cfg: Config) -> Runner:
    """The runner ``cfg`` names in ``runner_type``, else mmengine's (as mmdet's
    tools/train.py and tools/test.py build it)."""
    return RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)


def train(cfg: Config, resume: Optional[str] = None, amp: bool = False,
          auto_scale_lr: bool = False) -> Runner:
    """Train as mmdet's tools/train.py does; ``resume='auto'`` takes the newest
    checkpoint of the work dir that loads (:mod:`sn2_det.engine.resume`), and says so
    when there is none."""
    if amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if auto_scale_lr:
        cfg.auto_scale_lr = dict(cfg.get('auto_scale_lr', {}), enable=True)
    check_model_config(cfg)
    check_run_settings(cfg, training=True)
    check_class_counts(cfg)
    check_data_paths(cfg, ('train', 'val') if cfg.get('val_cfg') else ('train',))
    if resume == 'auto':
        checkpoint = latest_loadable_checkpoint(cfg.work_dir)
        if checkpoint is None:
            print_log(f'--resume: no checkpoint to resume from in {cfg.work_dir}; '
                      f'training starts from the beginning', logger='current',
                      level=logging.WARNING)
        cfg.resume, cfg.load_from = checkpoint is not None, checkpoint
    elif resume:
        cfg.resume, cfg.load_from = True, resume
    check_pretrained_backbone(cfg)
    started = init_cpu_process_group(cfg)
    try:
        runner = build_runner(cfg)
        runner.train()
    except BaseException:
        destroy_cpu_process_group(started, failed=True)
        raise
    destroy_cpu_process_group(started)
    return runner


def test(cfg: Config, checkpoint: str, out: Optional[str] = None) -> dict:
    """Evaluate ``checkpoint``; returns the metrics (and dumps predictions to ``out``)."""
    if out and not out.endswith(PICKLE_SUFFIXES):
        raise ConfigError(f"--out {out}: mmdet's DumpDetResults writes the raw predictions "
                          f"as a pickle, so the file must end in .pkl (the metrics as JSON: "
                          f"--metrics-json)")
    check_model_config(cfg)
    check_run_settings(cfg, training=False)
    check_class_counts(cfg, ('test',))
    check_data_paths(cfg, ('test',))
    cfg.load_from = checkpoint
    if out:
        cfg.test_evaluator = [cfg.test_evaluator] if isinstance(cfg.test_evaluator, dict) \
            else list(cfg.test_evaluator)
        cfg.test_evaluator.append(dict(type='DumpDetResults', out_file_path=out))
    started = init_cpu_process_group(cfg)
    try:
        metrics = build_runner(cfg).test()
    except BaseException:
        destroy_cpu_process_group(started, failed=True)
        raise
    destroy_cpu_process_group(started)
    return metrics

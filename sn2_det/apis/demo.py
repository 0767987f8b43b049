"""The bundled default run of ``make demo``: generate the toy dataset, train the
Light-Head ShuffleNet V2 toy detector on it, evaluate (COCO metrics) and draw."""
import os.path as osp
import time

import sn2_det  # noqa: F401
from ..datasets.toy_shapes import generate_toy_shapes
from .inference import detect_and_draw
from .runner import load_config, train

TOY_CONFIG = 'configs/toy/lighthead_sn2_toy.py'


def run_demo(config: str = TOY_CONFIG, work_dir: str = 'work_dirs/demo',
             cfg_options=None) -> dict:
    cfg = load_config(config, work_dir=work_dir, cfg_options=cfg_options)
    anns = generate_toy_shapes(cfg.data_root)
    print(f'toy dataset ready under {cfg.data_root} ({anns["train"]})')
    start = time.time()
    runner = train(cfg)
    minutes = (time.time() - start) / 60
    hub = runner.message_hub
    mmap = hub.get_scalar('val/coco/bbox_mAP').current()
    checkpoint = osp.join(work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
    image = osp.join(cfg.data_root, 'val', '00000.png')
    drawn = detect_and_draw(config, checkpoint, image, osp.join(work_dir, 'detections.png'))
    print(f'\nbbox mmAP (COCO AP@[.50:.95]) on the held-out split: {mmap:.3f} '
          f'after {minutes:.1f} min of training and evaluation')
    count = drawn['num_detections']
    print(f'detections drawn: {drawn["out"]} ({count} box{"" if count == 1 else "es"})')
    return dict(mmap=mmap, minutes=minutes, checkpoint=checkpoint, picture=drawn['out'])

"""Load: training and evaluation stream, their resident memory (the process
and its data workers) growing by less than 200 MB from the first hundred iterations
or images to the last. The measured figures are printed (``pytest -s``)."""
import json
import textwrap

import pytest

from sn2_det.datasets.toy_shapes import generate_toy_shapes
from test_faults import run_tool, tiny_config

ITERS, VAL_IMAGES, LIMIT_MB = 300, 3000, 200


@pytest.mark.slow
def test_training_and_evaluation_memory_stays_flat(tmp_path):
    root = tmp_path / 'data'
    generate_toy_shapes(str(root), num_train=200, num_val=VAL_IMAGES, image_size=(64, 64),
                        max_objects=2, seed=2)
    config = tiny_config(tmp_path / 'load.py', root, extra=textwrap.dedent(f'''
        train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters={ITERS},
                         val_interval={ITERS})
        default_hooks = dict(logger=dict(interval=50),
                             checkpoint=dict(by_epoch=False, interval={ITERS}))
        test_pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(64, 64), keep_ratio=True),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                                  'img_shape', 'scale_factor')),
        ]
        val_dataloader = dict(
            batch_size=4, num_workers=1, persistent_workers=True, drop_last=False,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(type='CocoDataset', data_root=data_root,
                         metainfo=dict(classes=('circle', 'square', 'triangle')),
                         ann_file='annotations/instances_val.json',
                         data_prefix=dict(img='val/'), test_mode=True,
                         pipeline=test_pipeline))
        val_cfg = dict(type='ValLoop')
        val_evaluator = dict(type='CocoMetric', metric='bbox',
                             ann_file=data_root + 'annotations/instances_val.json')
        custom_hooks = [dict(type='IterationSeedHook'),
                        dict(type='MemoryRecorderHook', interval=10)]
        '''))
    log = tmp_path / 'train.log'
    assert run_tool(['tools/train.py', config, '--work-dir', str(tmp_path / 'work')],
                    log, timeout=1500) == 0, log.read_text()[-3000:]
    (records,) = (tmp_path / 'work').glob('*/memory.jsonl')
    rss = {}
    for record in map(json.loads, records.read_text().splitlines()):
        rss[record['phase'], record['count']] = record['rss_mb']
    train = {n: mb for (phase, n), mb in rss.items() if phase == 'train'}
    val = {n: mb for (phase, n), mb in rss.items() if phase == 'val'}
    (after_metric,) = [mb for (phase, _), mb in rss.items()
                       if phase == 'val_metric']
    assert sorted(train)[-1] == ITERS and sorted(val)[-1] == VAL_IMAGES
    print(f'\nresident memory, process and data workers (MB): training iteration '
          f'100: {train[100]:.0f}, {ITERS}: {train[ITERS]:.0f} '
          f'(peak {max(train.values()):.0f}); '
          f'evaluation image 100: {val[100]:.0f}, {VAL_IMAGES}: {val[VAL_IMAGES]:.0f} '
          f'(peak {max(val.values()):.0f}), after the COCO metric: {after_metric:.0f}')
    assert train[ITERS] - train[100] < LIMIT_MB
    assert val[VAL_IMAGES] - val[100] < LIMIT_MB

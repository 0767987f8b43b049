"""Annotation files as users write them: category ids in any order map to classes by
name, the metric scores what the dataset keeps of the file (and only the dataset's
file), and the clipping count counts boxes that are outside the image."""
import json
import logging
import os
from pathlib import Path

import pytest
import torch
from mmdet.datasets import CocoDataset
from mmdet.evaluation import CocoMetric
from mmengine.config import Config
from mmengine.runner import save_checkpoint

from sn2_det.datasets import CheckedCocoDataset
from sn2_det.datasets.checked_coco import kept_annotations_coco
from sn2_det.datasets.toy_shapes import generate_toy_shapes
from sn2_det.evaluation import CheckedCocoMetric
from sn2_det.utils.config import build_in_mmdet_scope
from sn2_det.utils.errors import AnnotationError, EvaluatorMismatchError, SN2DetError

ROOT = Path(__file__).resolve().parents[1]
TOY = str(ROOT / 'configs/toy/lighthead_sn2_toy.py')
CLASSES = ('circle', 'square')
# The file lists square first: id 1 = square, id 2 = circle.
SQUARE_FIRST = [dict(id=1, name='square'), dict(id=2, name='circle')]
SQUARE = dict(image_id=1, category_id=1, bbox=[10, 10, 30, 30])  # id 1: a square
CIRCLE = dict(image_id=1, category_id=2, bbox=[50, 20, 20, 20])  # id 2: a circle


def _coco(path, annotations, categories=SQUARE_FIRST, images=(('a.png', 100, 80),)):
    """Write a COCO file; annotations get an id, iscrowd 0 and an area unless given."""
    data = dict(
        images=[dict(id=i + 1, file_name=name, width=w, height=h)
                for i, (name, w, h) in enumerate(images)],
        annotations=[dict(dict(id=i + 1, iscrowd=0, area=100.0), **ann)
                     for i, ann in enumerate(annotations)],
        categories=categories)
    path.write_text(json.dumps(data))
    return path


def _dataset(ann, test_mode=False, pipeline=(), classes=CLASSES, dataset_type=None):
    return (dataset_type or CheckedCocoDataset)(
        ann_file=str(ann), data_root=str(ann.parent), data_prefix=dict(img=''),
        metainfo=dict(classes=classes), pipeline=list(pipeline), test_mode=test_mode)


def _labelled_boxes(dataset, index=0):
    return [(dataset.metainfo['classes'][inst['bbox_label']], inst['bbox'])
            for inst in dataset.get_data_info(index)['instances']]


def _perfect_predictions(dataset):
    """What a perfect detector predicts for each image: the dataset's own boxes and
    labels (crowd regions are no objects to find)."""
    samples = []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        objects = [inst for inst in info['instances'] if not inst['ignore_flag']]
        samples.append(dict(
            img_id=info['img_id'], ori_shape=(info['height'], info['width']),
            pred_instances=dict(
                bboxes=torch.tensor([inst['bbox'] for inst in objects],
                                    dtype=torch.float32).view(-1, 4),
                scores=torch.ones(len(objects)),
                labels=torch.tensor([inst['bbox_label'] for inst in objects],
                                    dtype=torch.long))))
    return samples


def _evaluate(metric, dataset, samples=None):
    metric.dataset_meta = dataset.metainfo
    metric.process({}, samples if samples is not None else _perfect_predictions(dataset))
    return metric.evaluate(len(dataset))


# Categories by name ---------------------------------------------------------------

def test_category_ids_in_another_order_label_boxes_by_name(tmp_path):
    ann = _coco(tmp_path / 'ann.json', [SQUARE, CIRCLE])
    dataset = _dataset(ann)
    assert _labelled_boxes(dataset) == [('square', [10, 10, 40, 40]),
                                        ('circle', [50, 20, 70, 40])]
    assert dataset.cat_ids == [2, 1]  # the category id of each class
    # mmdet's CocoDataset takes the ids in file order: the square becomes a circle.
    assert _labelled_boxes(_dataset(ann, dataset_type=CocoDataset))[0][0] == 'circle'


def test_the_training_pipeline_gets_the_labels_by_name(tmp_path):
    import cv2
    import numpy as np
    cv2.imwrite(str(tmp_path / 'a.png'), np.full((80, 100, 3), 128, np.uint8))
    ann = _coco(tmp_path / 'ann.json', [SQUARE, CIRCLE])
    pipeline = Config.fromfile(TOY).train_dataloader.dataset.pipeline
    sample = _dataset(ann, pipeline=pipeline)[0]['data_samples']
    assert sample.gt_instances.labels.tolist() == [CLASSES.index('square'),
                                                   CLASSES.index('circle')]


def test_perfect_predictions_on_a_file_in_another_order_score_map_1(tmp_path):
    ann = _coco(tmp_path / 'ann.json', [SQUARE, CIRCLE])
    dataset = _dataset(ann, test_mode=True)
    metrics = _evaluate(CheckedCocoMetric(ann_file=str(ann)), dataset)
    assert metrics['coco/bbox_mAP'] == 1.0
    # mmdet's metric maps labels back in file order: a right prediction scores 0.
    assert _evaluate(CocoMetric(ann_file=str(ann)), dataset)['coco/bbox_mAP'] == 0.0


def test_a_swapped_label_is_not_a_hit(tmp_path):
    ann = _coco(tmp_path / 'ann.json', [SQUARE, CIRCLE])
    dataset = _dataset(ann, test_mode=True)
    samples = _perfect_predictions(dataset)
    samples[0]['pred_instances']['labels'] = 1 - samples[0]['pred_instances']['labels']
    assert _evaluate(CheckedCocoMetric(), dataset, samples)['coco/bbox_mAP'] == 0.0


def test_a_category_name_that_is_no_class_is_reported_once(tmp_path, log_records):
    categories = SQUARE_FIRST + [dict(id=3, name='Circle '), dict(id=4, name='hexagon')]
    ann = _coco(tmp_path / 'ann.json',
                [SQUARE, CIRCLE, dict(SQUARE, category_id=3), dict(SQUARE, category_id=4)],
                categories)
    dataset = _dataset(ann)
    assert [name for name, _ in _labelled_boxes(dataset)] == ['square', 'circle']
    assert dataset.annotation_counts['other_class'] == 2
    lines = [r for r in log_records if 'match no class' in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    assert lines[0].getMessage() == (
        f"{ann}: categories ['Circle ', 'hexagon'] match no class of metainfo.classes "
        f"['circle', 'square']; their boxes are dropped (a class subset, as in mmdet) "
        f"('Circle ' differs from the class 'circle' only in case or spaces)")


def test_a_class_without_a_category_keeps_the_other_labels(tmp_path, log_records):
    ann = _coco(tmp_path / 'ann.json', [SQUARE], [dict(id=1, name='square')])
    dataset = _dataset(ann, classes=('circle', 'square', 'triangle'))
    assert _labelled_boxes(dataset) == [('square', [10, 10, 40, 40])]
    assert dataset.cat_ids == [None, 1, None]
    assert any("classes ['circle', 'triangle'] have no category in the file" in
               r.getMessage() for r in log_records)
    metrics = _evaluate(CheckedCocoMetric(), _dataset(ann, test_mode=True,
                                                      classes=('circle', 'square',
                                                               'triangle')))
    assert metrics['coco/bbox_mAP'] == 1.0


@pytest.mark.parametrize('categories,annotations,message', [
    ([dict(id=1, name='hexagon')], [dict(SQUARE, category_id=1)],
     r"none of its categories \['hexagon'\] is a class of metainfo.classes "
     r"\['circle', 'square'\], so every box would be dropped"),
    (SQUARE_FIRST + [dict(id=5, name='circle')], [SQUARE],
     r"the class 'circle' is the name of categories \[2, 5\]"),
    (SQUARE_FIRST, [SQUARE, dict(CIRCLE, id=1)],
     r'annotation id 1 appears 2 times in annotations'),
], ids=['no_class', 'class_twice', 'duplicate_annotation_id'])
def test_a_file_that_cannot_give_right_labels_is_refused(tmp_path, categories,
                                                         annotations, message):
    ann = tmp_path / 'ann.json'
    ann.write_text(json.dumps(dict(
        images=[dict(id=1, file_name='a.png', width=100, height=80)],
        annotations=[dict(dict(id=i + 1, iscrowd=0, area=100.0), **a)
                     for i, a in enumerate(annotations)],
        categories=categories)))
    with pytest.raises(AnnotationError, match=rf'ann.json: {message}'):
        _dataset(ann)
    with pytest.raises(AnnotationError, match=rf'ann.json: {message}'):
        CheckedCocoMetric(ann_file=str(ann)).dataset_meta = dict(classes=CLASSES)
    assert issubclass(AnnotationError, SN2DetError)


# The metric scores what the dataset keeps ------------------------------------------

# Annotations the dataset drops with a warning; each crashed mmdet's metric or
# pycocotools after the inference, when they read the raw file.
DROPPED = {
    'bbox_of_5_numbers': dict(image_id=1, category_id=1, bbox=[5, 5, 10, 10, 1]),
    'bbox_null': dict(image_id=1, category_id=1, bbox=None),
    'bbox_string': dict(image_id=1, category_id=1, bbox='10 10 20 20'),
    'segmentation_only': dict(image_id=1, category_id=1,
                              segmentation=[[5, 5, 15, 5, 15, 15]]),
}


@pytest.mark.parametrize('case', sorted(DROPPED))
def test_annotations_the_dataset_dropped_are_not_scored(tmp_path, case):
    ann = _coco(tmp_path / 'ann.json', [SQUARE, CIRCLE, DROPPED[case]])
    dataset = _dataset(ann, test_mode=True)
    assert len(dataset.get_data_info(0)['instances']) == 2  # the bad one is dropped
    assert _evaluate(CheckedCocoMetric(ann_file=str(ann)), dataset)['coco/bbox_mAP'] == 1.0
    with pytest.raises(Exception):  # what mmdet's metric does with the raw file
        _evaluate(CocoMetric(ann_file=str(ann)), dataset)


def test_a_class_whose_category_differs_in_case_is_scored_without_it(tmp_path):
    """The file calls the third class 'Triangle': its boxes are dropped (with a
    warning), and predictions of that class are not scored."""
    classes = CLASSES + ('triangle',)
    ann = _coco(tmp_path / 'ann.json', [SQUARE, CIRCLE, dict(SQUARE, category_id=3)],
                SQUARE_FIRST + [dict(id=3, name='Triangle')])
    dataset = _dataset(ann, test_mode=True, classes=classes)
    assert [name for name, _ in _labelled_boxes(dataset)] == ['square', 'circle']
    samples = _perfect_predictions(dataset)
    pred = samples[0]['pred_instances']  # a detector predicts every class
    pred['bboxes'] = torch.cat([pred['bboxes'], torch.tensor([[10., 10., 40., 40.]])])
    pred['scores'] = torch.cat([pred['scores'], torch.tensor([0.5])])
    pred['labels'] = torch.cat([pred['labels'], torch.tensor([2])])
    assert _evaluate(CheckedCocoMetric(ann_file=str(ann)), dataset,
                     samples)['coco/bbox_mAP'] == 1.0
    with pytest.raises(IndexError):  # mmdet's: 2 category ids for 3 classes
        _evaluate(CocoMetric(ann_file=str(ann)), dataset, samples)


def test_an_annotation_without_iscrowd_is_scored(tmp_path):
    ann = _coco(tmp_path / 'ann.json', [SQUARE, CIRCLE])
    data = json.loads(ann.read_text())
    del data['annotations'][1]['iscrowd']
    ann.write_text(json.dumps(data))
    dataset = _dataset(ann, test_mode=True)
    assert _evaluate(CheckedCocoMetric(ann_file=str(ann)), dataset)['coco/bbox_mAP'] == 1.0
    with pytest.raises(KeyError, match='iscrowd'):  # pycocotools on the raw file
        _evaluate(CocoMetric(ann_file=str(ann)), dataset)


def test_the_metric_ground_truth_is_what_the_dataset_keeps(tmp_path):
    """Every rule at once: the metric's boxes are the dataset's, clipped boxes clipped,
    crowd regions crowd."""
    rows = [SQUARE, CIRCLE, dict(SQUARE, bbox=[-5, 70, 30, 20]),  # clipped
            dict(CIRCLE, bbox=[40, 40, 30, 30], iscrowd=1),       # crowd
            dict(SQUARE, bbox=[100, 10, 20, 20]),                 # outside
            dict(SQUARE, bbox=[10, 10, 0, 20]),                   # zero width
            dict(SQUARE, bbox=[10, 10, 20, 20], area=0),          # area 0
            dict(SQUARE, category_id=7), dict(SQUARE, category_id=3),  # 'Square'
            ] + list(DROPPED.values())
    ann = _coco(tmp_path / 'ann.json', rows,
                SQUARE_FIRST + [dict(id=3, name='Square')],
                images=(('a.png', 100, 80), ('b.png', 100, 80)))
    dataset = _dataset(ann, test_mode=True)
    coco, cat_ids = kept_annotations_coco(str(ann), CLASSES)
    assert cat_ids == dataset.cat_ids == [2, 1]
    expected = sorted((inst['bbox_label'], *inst['bbox'], inst['ignore_flag'])
                      for i in range(len(dataset))
                      for inst in dataset.get_data_info(i)['instances'])
    scored = sorted((cat_ids.index(a['category_id']), a['bbox'][0], a['bbox'][1],
                     a['bbox'][0] + a['bbox'][2], a['bbox'][1] + a['bbox'][3], a['iscrowd'])
                    for a in coco.dataset['annotations'])
    assert scored == expected and len(expected) == 4
    assert sorted(coco.get_img_ids()) == [1, 2]


# The metric refuses another annotation file -----------------------------------------

def test_an_evaluator_file_that_is_not_the_datasets_is_refused(tmp_path):
    ann = _coco(tmp_path / 'ann.json', [SQUARE, CIRCLE])
    other = _coco(tmp_path / 'other.json', [CIRCLE])
    dataset = _dataset(ann, test_mode=True)
    assert dataset.metainfo['ann_file'] == str(ann)
    metric = CheckedCocoMetric(ann_file=str(other))
    with pytest.raises(EvaluatorMismatchError,
                       match=rf"CheckedCocoMetric's ann_file {other} is not the annotation "
                             rf'file of the dataset it scores, {ann}'):
        metric.dataset_meta = dataset.metainfo
    # The same file under another path, or a copy of it, is the same file.
    (tmp_path / 'copy.json').write_bytes(ann.read_bytes())
    os.symlink(ann, tmp_path / 'link.json')
    for same in ('copy.json', 'link.json', 'sub/../ann.json'):
        (tmp_path / 'sub').mkdir(exist_ok=True)
        assert _evaluate(CheckedCocoMetric(ann_file=str(tmp_path / same)),
                         dataset)['coco/bbox_mAP'] == 1.0
    # Without an ann_file the metric scores against the dataset's.
    assert _evaluate(CheckedCocoMetric(), dataset)['coco/bbox_mAP'] == 1.0


# The clipping count ----------------------------------------------------------------

def test_float_boxes_inside_the_image_are_not_counted_as_clipped(tmp_path, log_records):
    inside = [[473.07, 395.93, 38.65, 28.67], [0.1, 0.2, 639.9, 479.8],
              [0.3, 0.7, 639.7, 479.3], [0, 0, 640, 480], [12.5, 3.25, 100.125, 50.75]]
    outside = [[600.5, 10, 40, 20], [-0.5, 10, 40, 20]]  # 0.5 pixels out
    ann = _coco(tmp_path / 'ann.json',
                [dict(SQUARE, bbox=box) for box in inside + outside],
                images=(('a.png', 640, 480),))
    dataset = _dataset(ann)
    assert dataset.annotation_counts['clipped'] == 2
    assert dataset.annotation_counts['kept'] == len(inside)
    boxes = [inst['bbox'] for inst in dataset.get_data_info(0)['instances']]
    # kept as written (x, y, x + w, y + h), the outside ones clipped to the image
    assert boxes == [[x, y, x + w, y + h] for x, y, w, h in inside] + [
        [600.5, 10, 640, 30], [0, 10, 39.5, 30]]
    line = log_records[-1].getMessage()
    assert '2 partly outside, clipped to the image' in line
    only_inside = _coco(tmp_path / 'inside.json',
                        [dict(SQUARE, bbox=box) for box in inside],
                        images=(('a.png', 640, 480),))
    _dataset(only_inside)
    assert 'clipped' not in log_records[-1].getMessage()
    assert log_records[-1].levelno == logging.INFO


# Through tools/test.py -------------------------------------------------------------

@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    """Two toy validation images and a checkpoint of the toy config."""
    root = tmp_path_factory.mktemp('toy')
    generate_toy_shapes(str(root), num_train=1, num_val=2, seed=4)
    cfg = Config.fromfile(TOY)
    torch.manual_seed(0)
    model = build_in_mmdet_scope(cfg.model)
    save_checkpoint(dict(meta=dict(dataset_meta=dict(classes=cfg.metainfo.classes)),
                         state_dict=model.state_dict()), str(root / 'toy.pth'))
    return root


def _test_tool(toy, work, *options):
    """tools/test.py on the toy checkpoint, in this process: (exit status, the run's
    log file)."""
    import runpy

    from sn2_det.utils.cli import run_tool
    main = runpy.run_path(str(ROOT / 'tools/test.py'), run_name='tools.test')['main']
    try:
        run_tool(main, [TOY, str(toy / 'toy.pth'), '--data-root', str(toy), '--work-dir',
                        str(work), '--cfg-options', 'test_dataloader.num_workers=0',
                        'test_dataloader.persistent_workers=False', *options])
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    return status, '\n'.join(p.read_text() for p in Path(work).glob('*/*.log'))


def test_test_tool_scores_a_file_with_dropped_annotations(toy, tmp_path):
    """The toy validation file with every kind of dropped annotation, a box without
    iscrowd, and its third category called 'Triangle' (the class is 'triangle')."""
    data = json.loads((toy / 'annotations/instances_val.json').read_text())
    for i, bad in enumerate(DROPPED.values()):
        data['annotations'].append(dict(bad, id=1000 + i, iscrowd=0, area=100.0))
    data['annotations'][0].pop('iscrowd')
    assert data['categories'][2]['name'] == 'triangle'
    data['categories'][2]['name'] = 'Triangle'
    bad_file = tmp_path / 'instances_val.json'
    bad_file.write_text(json.dumps(data))
    status, log = _test_tool(toy, tmp_path / 'work',
                             f'test_dataloader.dataset.ann_file={bad_file}',
                             f'test_evaluator.ann_file={bad_file}')
    assert status == 0
    assert "categories ['Triangle'] match no class" in log
    assert 'bbox_mAP_copypaste' in log  # the evaluation ran to the end


def test_test_tool_refuses_an_evaluator_file_before_inference(toy, tmp_path, capsys,
                                                              monkeypatch):
    monkeypatch.delenv('SN2_DET_DEBUG', raising=False)
    train = toy / 'annotations/instances_train.json'
    status, log = _test_tool(toy, tmp_path / 'work', f'test_evaluator.ann_file={train}')
    assert status == 2
    errors = [line for line in capsys.readouterr().err.splitlines()
              if line.startswith('error:')]
    assert errors == [
        f"error: CheckedCocoMetric's ann_file {train} is not the annotation file of the "
        f"dataset it scores, {toy}/annotations/instances_val.json: its images and boxes "
        f"are not the dataset's, so the score would mean nothing; set the evaluator's "
        f"ann_file to {toy}/annotations/instances_val.json, or leave it out to use the "
        f"dataset's"]
    assert 'instances_val.json: 2 images' in log  # the dataset was loaded, then
    assert 'Epoch(test)' not in log               # the refusal came before inference


# Test pipelines name mmcv's LoadImageFromFile ----------------------------------------

def test_a_test_dataset_reads_with_the_safe_loader_in_place_of_mmcv_s(tmp_path):
    from mmcv.transforms import LoadImageFromFile

    from sn2_det.datasets import LoadImageSafely
    from sn2_det.utils.errors import ConfigError
    ann = _coco(tmp_path / 'ann.json', [SQUARE])
    dataset = _dataset(ann, test_mode=True,
                       pipeline=[dict(type='LoadImageFromFile', to_float32=True)])
    loader = dataset.pipeline.transforms[0]
    assert type(loader) is LoadImageSafely and loader.on_unreadable == 'placeholder'
    assert loader.to_float32 is True
    mmdet_dataset = _dataset(ann, test_mode=True, dataset_type=CocoDataset,
                             pipeline=[dict(type='LoadImageFromFile')])
    assert type(mmdet_dataset.pipeline.transforms[0]) is LoadImageFromFile  # mmdet's: as is
    with pytest.raises(ConfigError, match=r"LoadImageFromFile\(color_type='grayscale'\) in "
                                          r'a test-mode CheckedCocoDataset'):
        _dataset(ann, test_mode=True,
                 pipeline=[dict(type='LoadImageFromFile', color_type='grayscale')])

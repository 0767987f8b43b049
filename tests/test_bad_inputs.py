"""The bad-input table: images, annotations and configs, a test (or a
parametrized case) per row, each asserting the behaviour docs/reliability.md names."""
import io
import json
import logging
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmcv.transforms import LoadImageFromFile
from mmdet.evaluation import CocoMetric
from mmdet.registry import MODELS, TRANSFORMS
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from PIL import Image

from sn2_det.datasets import CheckedCocoDataset, LoadImageSafely
from sn2_det.datasets.transforms import UnreadableImageError
from sn2_det.datasets.transforms.robust_loading import jpeg_is_truncated
from sn2_det.evaluation import CheckedCocoMetric

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / 'configs/toy/lighthead_sn2_toy.py'
CLASSES = ('circle', 'square')


def _pattern(h, w, seed=0):
    """A smooth image whose quadrants differ, so that a rotation shows."""
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.uniform(0, 255, (4, 4, 3)).astype(np.float32), (w, h))
    img[:h // 3, :w // 2] = (20, 200, 60)
    return img.astype(np.uint8)


def _jpeg(img):
    return cv2.imencode('.jpg', img)[1].tobytes()


def _png(img):
    return cv2.imencode('.png', img)[1].tobytes()


# Unreadable files and the reason each warning gives.
UNREADABLE = {
    'corrupt_jpeg': (lambda: _jpeg(_pattern(48, 64))[:2] + bytes(38)
                     + _jpeg(_pattern(48, 64))[40:], 'cannot decode'),
    'truncated_jpeg': (lambda: _jpeg(_pattern(48, 64))[:-300], 'truncated JPEG'),
    'truncated_png': (lambda: _png(_pattern(48, 64))[:-40], 'cannot decode'),
    'zero_byte': (lambda: b'', 'empty file'),
    'missing': (None, 'no such file'),
}


def _bad_file(tmp_path, kind):
    make, reason = UNREADABLE[kind]
    path = tmp_path / f'{kind}.{"png" if "png" in kind else "jpg"}'
    if make is not None:
        path.write_bytes(make())
    return path, reason


@pytest.mark.parametrize('kind', sorted(UNREADABLE))
def test_unreadable_image_is_skipped_with_one_warning(tmp_path, kind, log_records):
    path, reason = _bad_file(tmp_path, kind)
    load = LoadImageSafely(on_unreadable='skip')
    assert load(dict(img_path=str(path))) is None
    assert load(dict(img_path=str(path))) is None
    assert (load.attempts, load.unreadable) == (2, 2)
    messages = [r.getMessage() for r in log_records]
    assert len(messages) == 1, messages  # one warning per file, not per load
    assert str(path) in messages[0] and reason in messages[0]
    with pytest.raises(UnreadableImageError, match=reason):
        LoadImageSafely(on_unreadable='raise')(dict(img_path=str(path)))


@pytest.mark.parametrize('kind', sorted(UNREADABLE))
def test_test_pipeline_loader_refuses_an_unreadable_image_by_name(tmp_path, kind):
    """mmcv's LoadImageFromFile as the shipped test pipelines configure it (the loader
    of mmdet's DetInferencer and inference_detector) reads through the 'checked_image'
    file backend: LoadImageSafely's checks, an error naming the file and the reason."""
    path, reason = _bad_file(tmp_path, kind)
    load = TRANSFORMS.build(_toy_pipeline('test')[0])
    assert type(load) is LoadImageFromFile
    with pytest.raises(UnreadableImageError,
                       match=f'^cannot read image {re.escape(str(path))}: {reason}'):
        load(dict(img_path=str(path)))


@pytest.mark.parametrize('kind', ['jpeg', 'png', '16bit_png', 'grayscale_png'])
def test_test_pipeline_loader_reads_whole_images_as_mmcv_does(tmp_path, kind):
    """The checked backend gives a readable file's bytes unchanged: the image is mmcv's
    loader's without the backend."""
    path = tmp_path / f'{kind}.{"jpg" if kind == "jpeg" else "png"}'
    img = {'jpeg': _pattern(48, 64), 'png': _pattern(48, 64),
           '16bit_png': _pattern(48, 64).astype(np.uint16) * 257,
           'grayscale_png': _pattern(48, 64)[..., 0]}[kind]
    cv2.imwrite(str(path), img)
    checked = TRANSFORMS.build(_toy_pipeline('test')[0])(dict(img_path=str(path)))['img']
    plain = LoadImageFromFile()(dict(img_path=str(path)))['img']
    assert checked.shape == (48, 64, 3)
    np.testing.assert_array_equal(checked, plain)


def test_load_image_safely_with_the_checked_backend_names_the_file_once(tmp_path,
                                                                        log_records):
    """LoadImageSafely given the test pipeline's backend_args (as a test-mode dataset
    builds it) makes its own checks: one warning, the file named once, a placeholder of
    the annotation's size; a size check the backend cannot make still applies."""
    path, _ = _bad_file(tmp_path, 'truncated_jpeg')
    load = LoadImageSafely(backend_args=_toy_pipeline('test')[0].backend_args)
    out = load(dict(img_path=str(path), height=48, width=64))
    assert out['img_unreadable'] is True and out['img'].shape == (48, 64, 3)
    message = log_records[-1].getMessage()
    assert message.startswith(f'cannot read image {path}: truncated JPEG')
    assert message.count(str(path)) == 1
    good = tmp_path / 'good.png'
    cv2.imwrite(str(good), _pattern(48, 64))
    assert load(dict(img_path=str(good), height=48, width=64))['img_unreadable'] is False
    assert load(dict(img_path=str(good), height=64, width=48))['img_unreadable'] is True
    assert "is not the annotation's 48x64" in log_records[-1].getMessage()


def test_truncated_jpeg_is_found_by_its_missing_end_marker():
    # cv2 4.x decodes a JPEG cut short with the rest grey; the marker check does not
    # depend on the decoder.
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[274] = 6
    Image.fromarray(_pattern(48, 64)).save(buf, 'JPEG', exif=exif.tobytes())
    data = buf.getvalue()
    assert not jpeg_is_truncated(data)
    assert not jpeg_is_truncated(data + b'trailing bytes after the image')
    for cut in (2, 100, len(data) // 2):
        assert jpeg_is_truncated(data[:-cut])


def test_training_stops_when_too_many_images_are_unreadable(tmp_path):
    good = tmp_path / 'good.png'
    cv2.imwrite(str(good), _pattern(16, 16))
    bad, _ = _bad_file(tmp_path, 'zero_byte')
    load = LoadImageSafely(on_unreadable='skip', max_unreadable_share=0.25, min_attempts=8)
    # 1 of the first 3 loads fails (33%): under min_attempts, training goes on.
    for path in (bad, good, good, good, good, good, good, good):
        load(dict(img_path=str(path)))
    assert (load.attempts, load.unreadable) == (8, 1)
    assert load(dict(img_path=str(bad))) is None  # 2 of 9 = 22%: goes on
    with pytest.raises(RuntimeError, match=r'3 of the 10 images .* \(30\.0%\), more than '
                                           r'max_unreadable_share=0\.25'):
        load(dict(img_path=str(bad)))


def _coco(tmp_path, images, annotations, name='ann.json'):
    """Write a COCO file; ``images`` are (file_name, width, height[, id])."""
    data = dict(
        images=[dict(id=img[3] if len(img) > 3 else i + 1, file_name=img[0], width=img[1],
                     height=img[2]) for i, img in enumerate(images)],
        annotations=[dict(dict(id=i + 1, iscrowd=0, area=100.0), **ann)
                     for i, ann in enumerate(annotations)],
        categories=[dict(id=i + 1, name=name) for i, name in enumerate(CLASSES)])
    path = tmp_path / name
    path.write_text(json.dumps(data))  # NaN and Infinity written as JSON allows
    return path


def _dataset(ann, pipeline=(), test_mode=False, filter_empty_gt=False):
    return CheckedCocoDataset(ann_file=str(ann), data_root=str(ann.parent),
                              data_prefix=dict(img=''), metainfo=dict(classes=CLASSES),
                              pipeline=list(pipeline), test_mode=test_mode,
                              filter_cfg=dict(filter_empty_gt=filter_empty_gt))


def _toy_pipeline(split):
    cfg = Config.fromfile(str(TOY))
    return cfg[f'{split}_dataloader'].dataset.pipeline


def test_training_goes_on_past_an_unreadable_image(tmp_path, log_records):
    cv2.imwrite(str(tmp_path / 'good.png'), _pattern(64, 96))
    ann = _coco(tmp_path, [('good.png', 96, 64), ('missing.png', 96, 64)],
                [dict(image_id=1, category_id=1, bbox=[10, 10, 30, 30]),
                 dict(image_id=2, category_id=1, bbox=[10, 10, 30, 30])])
    dataset = _dataset(ann, _toy_pipeline('train'))
    sample = dataset[1]  # missing.png: mmengine fetches another sample instead
    assert sample['data_samples'].img_path.endswith('good.png')
    assert sample['inputs'].shape[0] == 3
    assert any('missing.png' in r.getMessage() and 'skipped' in r.getMessage()
               for r in log_records)


@pytest.mark.parametrize('kind', ['grayscale', 'rgba', '16bit', '16bit_gray', 'palette',
                                  'tiny_16x16'])
def test_readable_unusual_image_is_converted(tmp_path, kind):
    path = tmp_path / f'{kind}.png'
    h, w = (16, 16) if kind == 'tiny_16x16' else (24, 32)
    values = np.array([0, 1, 255, 300, 32896, 65535], np.uint16)
    if kind == 'grayscale':
        cv2.imwrite(str(path), np.full((h, w), 77, np.uint8))
        expected = np.full((h, w, 3), 77)
    elif kind == 'rgba':
        img = np.zeros((h, w, 4), np.uint8)
        img[..., :3] = (10, 20, 30)  # BGR; alpha 0 on the left half, 255 on the right
        img[:, w // 2:, 3] = 255
        cv2.imwrite(str(path), img)
        expected = np.broadcast_to(np.array([10, 20, 30]), (h, w, 3))  # alpha dropped
    elif kind.startswith('16bit'):
        img = np.resize(values, (h, w))
        cv2.imwrite(str(path), img if kind == '16bit_gray' else np.dstack([img] * 3))
        # Full-range scaling: 300 -> 1 (truncation to 8 bits would give 44 or 255).
        expected = np.dstack([np.resize(np.array([0, 0, 1, 1, 128, 255]), (h, w))] * 3)
    elif kind == 'palette':
        pil = Image.fromarray(np.full((h, w), 2, np.uint8), 'P')
        pil.putpalette([0, 0, 0, 0, 0, 0, 200, 100, 50] + [0] * 759)
        pil.save(path)
        expected = np.broadcast_to(np.array([50, 100, 200]), (h, w, 3))  # RGB -> BGR
    else:
        img = _pattern(16, 16)
        cv2.imwrite(str(path), img)
        expected = img
    load = LoadImageSafely(on_unreadable='raise')
    out = load(dict(img_path=str(path), height=h, width=w))
    assert out['img'].dtype == np.uint8 and out['img'].shape == (h, w, 3)
    assert out['img_unreadable'] is False
    assert np.array_equal(out['img'], expected)


def test_tiny_and_huge_images_go_through_the_training_pipeline(tmp_path):
    cv2.imwrite(str(tmp_path / 'tiny.png'), _pattern(16, 16))
    huge = np.full((6000, 8000, 3), 90, np.uint8)
    huge[1000:3000, 2000:5000] = (30, 160, 220)
    cv2.imwrite(str(tmp_path / 'huge.jpg'), huge)
    del huge
    ann = _coco(tmp_path, [('tiny.png', 16, 16), ('huge.jpg', 8000, 6000)],
                [dict(image_id=1, category_id=1, bbox=[2, 2, 10, 10]),
                 dict(image_id=2, category_id=2, bbox=[2000, 1000, 3000, 2000])])
    dataset = _dataset(ann, _toy_pipeline('train'))
    tiny, huge = dataset[0]['data_samples'], dataset[1]['data_samples']
    assert tiny.ori_shape == (16, 16) and max(tiny.img_shape) == 256
    assert huge.ori_shape == (6000, 8000) and huge.img_shape == (192, 256)
    box = [96., 32., 192., 96.] if huge.flip else [64., 32., 160., 96.]  # RandomFlip
    assert torch.allclose(huge.gt_instances.bboxes.tensor, torch.tensor([box]))


def _exif_jpeg(path, raw, orientation):
    exif = Image.Exif()
    exif[274] = orientation
    Image.fromarray(raw[..., ::-1]).save(path, 'JPEG', quality=95, exif=exif.tobytes())


def test_exif_rotated_photo_follows_the_annotation(tmp_path, log_records):
    raw = _pattern(40, 60)  # the stored pixels, 60 wide and 40 high
    path = tmp_path / 'photo.jpg'
    _exif_jpeg(path, raw, orientation=6)  # shown rotated 90 degrees clockwise
    shown = np.rot90(raw, k=-1)
    load = LoadImageSafely(on_unreadable='skip')

    def diff(a, b):
        return np.abs(a.astype(int) - b.astype(int)).mean()

    out = load(dict(img_path=str(path)))  # no recorded size: as a viewer shows it
    assert out['img'].shape == (60, 40, 3) and diff(out['img'], shown) < 4
    out = load(dict(img_path=str(path), width=40, height=60))  # annotated as shown
    assert out['img'].shape == (60, 40, 3) and diff(out['img'], shown) < 4
    out = load(dict(img_path=str(path), width=60, height=40))  # annotated on raw pixels
    assert out['img'].shape == (40, 60, 3) and diff(out['img'], raw) < 4
    assert load(dict(img_path=str(path), width=50, height=50)) is None
    assert "decoded size 40x60 (width x height) is not the annotation's 50x50" in \
        log_records[-1].getMessage()


def test_evaluation_marks_unreadable_images_and_never_drops_them(tmp_path):
    cv2.imwrite(str(tmp_path / 'good.png'), _pattern(64, 96))
    ann = _coco(tmp_path, [('good.png', 96, 64), ('missing.png', 96, 64)],
                [dict(image_id=1, category_id=1, bbox=[10, 10, 30, 30]),
                 dict(image_id=2, category_id=2, bbox=[10, 10, 30, 30])])
    dataset = _dataset(ann, _toy_pipeline('test'), test_mode=True)
    good, missing = dataset[0]['data_samples'], dataset[1]['data_samples']
    assert good.img_unreadable is False
    assert missing.img_unreadable is True and missing.ori_shape == (64, 96)
    assert len(missing.gt_instances) == 1  # its boxes are still known
    with pytest.raises(ValueError, match="use on_unreadable='placeholder' or 'raise'"):
        _dataset(ann, _toy_pipeline('train'), test_mode=True)
    with pytest.raises(ValueError, match="training dataset .* use on_unreadable='skip'"):
        _dataset(ann, _toy_pipeline('test'))
    with pytest.raises(UnreadableImageError, match='missing.png: no such file'):
        LoadImageSafely()(dict(img_path=str(tmp_path / 'missing.png')))  # no dataset


def _prediction(img_id, boxes, labels, unreadable=False, path='x.png'):
    boxes = torch.tensor(boxes, dtype=torch.float32).view(-1, 4)
    return dict(img_id=img_id, img_path=path, ori_shape=(64, 96),
                img_unreadable=unreadable,
                pred_instances=dict(bboxes=boxes, scores=torch.ones(len(boxes)),
                                    labels=torch.tensor(labels, dtype=torch.long)))


def test_evaluation_reports_unreadable_images_instead_of_scoring_them(tmp_path,
                                                                      log_records):
    ann = _coco(tmp_path, [(f'{i}.png', 96, 64) for i in range(3)],
                [dict(image_id=i + 1, category_id=1, bbox=[10, 10, 30, 30])
                 for i in range(3)])
    samples = [_prediction(1, [[10, 10, 40, 40]], [0]),
               _prediction(2, [], [], unreadable=True, path='broken.png'),
               _prediction(3, [[10, 10, 40, 40]], [0])]
    results = {}
    for metric_type in (CocoMetric, CheckedCocoMetric):
        metric = metric_type(ann_file=str(ann), metric='bbox')
        metric.dataset_meta = dict(classes=CLASSES)
        metric.process({}, samples)
        results[metric_type] = metric.evaluate(3)
    # mmdet's metric scores the unreadable image as one whose object was missed.
    assert results[CocoMetric]['coco/bbox_mAP'] < 0.9
    assert results[CheckedCocoMetric]['coco/bbox_mAP'] == 1.0
    assert results[CheckedCocoMetric]['coco/unreadable_images'] == 1
    assert any('1 of 3 images could not be read' in r.getMessage()
               and 'broken.png' in r.getMessage() for r in log_records)
    metric = CheckedCocoMetric(ann_file=str(ann), metric='bbox')
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, [_prediction(1, [], [], unreadable=True)])
    with pytest.raises(RuntimeError, match='none of the 1 images could be read'):
        metric.evaluate(1)


GOOD = dict(category_id=1, bbox=[10, 10, 20, 20])
# Annotation rows: the box, the counter it lands in and what is kept of it
# (x1, y1, x2, y2, ignore_flag) or None when it is dropped.
ANNOTATION_ROWS = {
    'zero_width': (dict(category_id=1, bbox=[10, 10, 0, 20]), 'non_positive', None),
    'negative_height': (dict(category_id=1, bbox=[10, 30, 20, -5]), 'non_positive', None),
    'partly_outside': (dict(category_id=2, bbox=[-5, 70, 30, 20]), 'clipped',
                       (0, 70, 25, 80, 0)),
    'wholly_outside': (dict(category_id=1, bbox=[100, 10, 20, 20]), 'outside', None),
    'nan_coordinate': (dict(category_id=1, bbox=[float('nan'), 10, 20, 20]), 'non_finite',
                       None),
    'infinite_width': (dict(category_id=1, bbox=[10, 10, float('inf'), 20]), 'non_finite',
                       None),
    'unknown_category': (dict(category_id=7, bbox=[10, 10, 20, 20]), 'unknown_category',
                         None),
    'crowd': (dict(category_id=2, bbox=[40, 40, 30, 30], iscrowd=1), 'crowd',
              (40, 40, 70, 70, 1)),
}
LOG_TEXT = dict(non_positive='1 zero or negative width or height', clipped='1 partly outside',
                outside='1 wholly outside the image', non_finite='1 NaN or infinite',
                unknown_category="1 category id not in 'categories'",
                crowd='1 crowd, kept as ignored regions')


@pytest.mark.parametrize('row', sorted(ANNOTATION_ROWS))
def test_annotation_row_is_filtered_clipped_or_kept_by_its_rule(tmp_path, row,
                                                                 log_records):
    bad, counter, kept = ANNOTATION_ROWS[row]
    ann = _coco(tmp_path, [('a.png', 100, 80)],
                [dict(GOOD, image_id=1), dict(bad, image_id=1)])
    dataset = _dataset(ann)
    instances = dataset.get_data_info(0)['instances']
    expected = [(10, 10, 30, 30, 0)] + ([kept] if kept else [])
    assert [(*inst['bbox'], inst['ignore_flag']) for inst in instances] == expected
    assert dataset.annotation_counts[counter] == 1
    assert dataset.annotation_counts['boxes'] == 2
    line = log_records[-1].getMessage()
    assert str(ann) in line and LOG_TEXT[counter] in line
    assert log_records[-1].levelno == (logging.INFO if row == 'crowd' else logging.WARNING)


@pytest.mark.parametrize('filter_empty_gt', [False, True])
def test_image_without_boxes_is_a_negative_unless_filtered(tmp_path, filter_empty_gt):
    ann = _coco(tmp_path, [('a.png', 100, 80), ('empty.png', 100, 80),
                           ('all_dropped.png', 100, 80)],
                [dict(GOOD, image_id=1), dict(GOOD, image_id=3, bbox=[0, 0, 0, 5])])
    dataset = _dataset(ann, filter_empty_gt=filter_empty_gt)
    names = [Path(dataset.get_data_info(i)['img_path']).name for i in range(len(dataset))]
    assert names == (['a.png'] if filter_empty_gt
                     else ['a.png', 'empty.png', 'all_dropped.png'])
    assert dataset.annotation_counts['no_boxes'] == 2


def test_duplicate_image_ids_are_rejected(tmp_path):
    ann = _coco(tmp_path, [('a.png', 100, 80, 5), ('b.png', 100, 80, 5)],
                [dict(GOOD, image_id=5)])
    with pytest.raises(ValueError, match=r"ann.json: image id 5 appears 2 times in images "
                                         r"\(file names \['a.png', 'b.png'\]\)"):
        _dataset(ann)


def test_a_file_whose_categories_are_all_unknown_is_rejected(tmp_path):
    ann = _coco(tmp_path, [('a.png', 100, 80)],
                [dict(GOOD, image_id=1, category_id=0), dict(GOOD, image_id=1,
                                                             category_id=3)])
    with pytest.raises(ValueError, match=r'none of its 2 boxes has a category id in '
                                         r'categories \[1, 2\] \(ids found: \[0, 3\]\)'):
        _dataset(ann)


def test_no_bad_box_reaches_the_loss_as_nan(tmp_path):
    """One training step of the toy detector on images carrying every bad box kind."""
    for name in ('a.png', 'b.png'):
        cv2.imwrite(str(tmp_path / name), _pattern(80, 100))
    anns = [dict(bad, image_id=image_id) for image_id in (1, 2)
            for bad, _, _ in ANNOTATION_ROWS.values()]
    ann = _coco(tmp_path, [('a.png', 100, 80), ('b.png', 100, 80)],
                anns + [dict(GOOD, image_id=1)])
    dataset = _dataset(ann, _toy_pipeline('train'))
    batch = pseudo_collate([dataset[0], dataset[1]])
    for sample in batch['data_samples']:
        assert torch.isfinite(sample.gt_instances.bboxes.tensor).all()
    cfg = Config.fromfile(str(TOY))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    losses = model(**model.data_preprocessor(batch, training=True), mode='loss')
    for name, value in losses.items():
        values = value if isinstance(value, list) else [value]
        assert all(torch.isfinite(v).all() for v in values), name


def _toy_model_cfg(**backbone):
    cfg = Config.fromfile(str(TOY))
    cfg.model.backbone.update(backbone)
    return cfg.model


@pytest.mark.parametrize('slot, name, closest', [
    ('backbone', 'ShuffleNetV3', 'ShuffleNetV2'),
    ('roi_head.bbox_head', 'TopKNMSBoxHead', 'TopKNMSBBoxHead'),
])
def test_unknown_model_type_is_named_with_its_key_before_the_run(tmp_path, slot, name,
                                                                  closest):
    from sn2_det.apis.runner import train
    cfg = Config.fromfile(str(TOY))
    node = cfg.model
    for part in slot.split('.'):
        node = node[part]
    node.type = name
    cfg.work_dir = str(tmp_path / 'work')
    with pytest.raises(ValueError, match=rf"model\.{slot}\.type: '{name}' is not a "
                                         rf"registered model type.*closest registered: "
                                         rf"{closest}"):
        train(cfg)
    assert not (tmp_path / 'work').exists()  # nothing built, nothing written
    with pytest.raises(KeyError, match=f'{name} is not in the mmdet::model registry'):
        MODELS.build(cfg.model)  # what mmengine alone says, without the key


def test_unknown_backbone_key_names_it_and_the_valid_ones():
    from sn2_det.apis.model_check import check_model_config
    cfg = Config.fromfile(str(TOY))
    cfg.model = _toy_model_cfg(widen=1.0)
    with pytest.raises(TypeError, match=r"ShuffleNetV2 has no argument 'widen' \(did you "
                                        r"mean 'widen_factor'\?\); its arguments are "
                                        r"widen_factor, out_indices, frozen_stages"):
        check_model_config(cfg)  # the config check of tools/train.py and tools/test.py


def test_widen_factor_that_does_not_exist():
    with pytest.raises(ValueError, match=r'widen_factor must be one of \(0\.5, 1\.0, 1\.5, '
                                         r'2\.0\), got 0\.7'):
        MODELS.build(_toy_model_cfg(widen_factor=0.7))


@pytest.mark.parametrize('key,value,message', [
    ('level', 200, r'level must be one of \(40, 140, 300, 500\), got 200'),
    ('name', 'resnet', r"name must be one of \('xception', .*got 'resnet'"),
    ('widen', 1.0, r"ShuffleNetV2 has no argument 'widen'"),
], ids=['level', 'name', 'unknown_key'])
def test_table7_cell_that_does_not_exist(key, value, message):
    cfg = Config.fromfile(str(ROOT / 'configs/table7/lighthead_shufflenet_v2_140m.py'))
    cfg.model.backbone[key] = value
    with pytest.raises((ValueError, TypeError), match=message):
        MODELS.build(cfg.model.backbone)


@pytest.mark.parametrize('config', ['configs/lighthead_sn2.py', 'configs/toy/lighthead_sn2_toy.py'])
def test_configs_load_images_safely_and_stay_usable_for_inference(config):
    from mmdet.utils import get_test_pipeline_cfg
    cfg = Config.fromfile(str(ROOT / config))
    assert cfg.train_dataloader.dataset.type == 'SeededDataset'  # wraps ...
    assert cfg.train_dataloader.dataset.dataset_type == 'CheckedCocoDataset'
    assert cfg.train_dataloader.dataset.pipeline[0] == dict(
        type='LoadImageSafely', on_unreadable='skip', max_unreadable_share=0.01)
    assert cfg.test_dataloader.dataset.type == 'CheckedCocoDataset'
    assert cfg.val_evaluator.type == cfg.test_evaluator.type == 'CheckedCocoMetric'
    assert 'img_unreadable' in cfg.test_dataloader.dataset.pipeline[-1].meta_keys
    # mmcv's loader by its own name, which mmdet's DetInferencer and inference_detector
    # look for, through the file backend that checks images; the test dataset reads
    # with LoadImageSafely in its place.
    assert get_test_pipeline_cfg(cfg)[0] == dict(type='LoadImageFromFile',
                                                 backend_args=dict(backend='checked_image'))

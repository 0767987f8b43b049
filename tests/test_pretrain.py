"""ImageNet pretraining: classifier, image-folder dataset and transforms, top-k metric,
a short training run through tools/train.py on a generated image set, and the
backbone extraction that a detector config then loads."""
import glob
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.structures import BaseDataElement

import sn2_det  # noqa: F401
import sn2_det.datasets.image_folder  # noqa: F401
import sn2_det.evaluation  # noqa: F401
import sn2_det.models.classifiers  # noqa: F401
from helpers import run_python as _run
from mmdet.registry import DATASETS, METRICS, MODELS, TRANSFORMS
from sn2_det.datasets.toy_classification import CLASSES, generate_toy_classification
from sn2_det.datasets.toy_shapes import dataset_digest
from sn2_det.utils.checkpoint import CheckpointError, safe_torch_load

ROOT = Path(__file__).resolve().parents[1]
SN2 = str(ROOT / 'configs/pretrain/shufflenet_v2_1.0x_imagenet.py')
EPOCHS = 30  # 32 images, batch 16: 60 iterations


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy_cls')
    generate_toy_classification(str(root), num_train=8, num_val=4, seed=1)
    return root


def _classifier(**kwargs):
    backbone = kwargs.pop('backbone', dict(type='ShuffleNetV2', widen_factor=0.5))
    return MODELS.build(dict(type='ImageClassifier', backbone=backbone, **kwargs))


def _samples(labels):
    return [BaseDataElement(gt_label=torch.tensor(label)) for label in labels]


def test_classifier_shapes_loss_and_predictions():
    model = _classifier(num_classes=7, label_smoothing=0.1)
    assert model.fc.in_features == 1024 and model.fc.out_features == 7
    assert _classifier(backbone=dict(type='ShuffleNetV2', widen_factor=0.5,
                                     out_indices=(1, 2))).fc.in_features == 192
    model.init_weights()
    assert 0.008 < float(model.fc.weight.detach().std()) < 0.012 and not model.fc.bias.any()
    torch.nn.init.normal_(model.fc.weight, std=100.0)  # logits far from uniform
    model.eval()
    inputs = torch.randn(3, 3, 64, 64)
    logits = model(inputs)
    assert logits.shape == (3, 7)
    labels = [0, 3, 6]
    loss = model(inputs, _samples(labels), mode='loss')['loss']
    expected = F.cross_entropy(logits, torch.tensor(labels), label_smoothing=0.1)
    assert torch.allclose(loss, expected)
    assert not torch.allclose(loss, F.cross_entropy(logits, torch.tensor(labels)))
    loss.backward()
    assert model.backbone.conv1.conv.weight.grad.abs().sum() > 0
    preds = model(inputs, _samples(labels), mode='predict')
    scores = torch.stack([p.pred_score for p in preds])
    assert torch.allclose(scores.sum(1), torch.ones(3))
    assert [int(p.pred_label) for p in preds] == logits.argmax(1).tolist()
    assert [int(p.gt_label) for p in preds] == labels
    with pytest.raises(ValueError, match="mode must be one of .*'loss'"):
        model(inputs, mode='train')
    with pytest.raises(ValueError, match='needs data_samples'):
        model(inputs, mode='loss')


def test_classifier_other_backbones_and_bad_arguments():
    resnet = dict(type='ResNet', depth=18, out_indices=(3,), init_cfg=None)
    with pytest.raises(ValueError, match='set in_channels'):
        _classifier(backbone=resnet)
    assert _classifier(backbone=resnet, in_channels=512, num_classes=3)(
        torch.randn(2, 3, 32, 32)).shape == (2, 3)
    with pytest.raises(ValueError, match='num_classes must be a positive int'):
        _classifier(num_classes=0)
    with pytest.raises(ValueError, match=r'dropout must be a number in \[0, 1\)'):
        _classifier(dropout=1.5)
    dropout = _classifier(dropout=0.2).train()
    out = dropout(torch.randn(2, 3, 32, 32))
    assert isinstance(dropout.dropout, torch.nn.Dropout) and out.shape == (2, 1000)


def test_toy_set_is_deterministic_and_reads_in_both_layouts(tmp_path, toy_root):
    generate_toy_classification(str(tmp_path / 'again'), num_train=8, num_val=4, seed=1)
    assert dataset_digest(str(tmp_path / 'again')) == dataset_digest(str(toy_root))
    train = DATASETS.build(dict(type='ImageFolderDataset', data_root=str(toy_root),
                                data_prefix=dict(img_path='train/')))
    assert train.metainfo['classes'] == CLASSES and len(train) == 32
    for index in range(len(train)):
        info = train.get_data_info(index)
        assert Path(info['img_path']).parent.name == CLASSES[info['gt_label']]
    folders = DATASETS.build(dict(type='ImageFolderDataset', data_root=str(toy_root),
                                  data_prefix=dict(img_path='val/')))
    listed = DATASETS.build(dict(type='ImageFolderDataset', data_root=str(toy_root),
                                 data_prefix=dict(img_path='val/'), ann_file='meta/val.txt',
                                 metainfo=dict(classes=CLASSES)))
    pairs = [(d['img_path'], d['gt_label']) for d in (folders[i] for i in range(16))]
    assert pairs == [(d['img_path'], d['gt_label']) for d in (listed[i] for i in range(16))]
    assert listed.metainfo['classes'] == CLASSES
    assert len({p for p, _ in pairs}) == 16 and sorted({l for _, l in pairs}) == [0, 1, 2, 3]


def _pipeline_dataset(root, **kwargs):
    cfg = Config.fromfile(SN2)
    dataset = cfg.train_dataloader.dataset.to_dict()
    dataset.update(data_root=str(root), **kwargs)
    dataset['pipeline'][1]['size'] = 48
    return DATASETS.build(dataset)


def test_pipeline_to_classifier_loss(toy_root):
    dataset = _pipeline_dataset(toy_root)
    item = dataset[5]
    assert item['inputs'].shape == (3, 48, 48) and item['inputs'].dtype == torch.uint8
    assert int(item['data_samples'].gt_label) == dataset.get_data_info(5)['gt_label']
    model = _classifier(num_classes=4)
    data = model.data_preprocessor(pseudo_collate([dataset[i] for i in (0, 9, 17)]), True)
    assert data['inputs'].dtype == torch.float32 and abs(float(data['inputs'].mean())) < 3
    assert torch.isfinite(model(**data, mode='loss')['loss'])

    test = Config.fromfile(SN2).val_dataloader.dataset.pipeline
    test[1]['size'], test[2]['crop_size'] = 40, 32
    build = [TRANSFORMS.build(t) for t in test]
    results = dict(img_path=dataset.get_data_info(0)['img_path'], gt_label=2)
    for transform in build[:2]:
        results = transform(results)
    assert results['img'].shape == (40, 40, 3)  # short side of a square image
    tall = build[1](dict(img=np.zeros((100, 50, 3), np.uint8)))['img']
    assert tall.shape == (80, 40, 3)
    packed = build[3](build[2](build[1](dict(img=np.zeros((100, 50, 3), np.uint8)))))
    assert packed['inputs'].shape == (3, 32, 32)


def test_random_resized_crop_and_color_jitter():
    crop = TRANSFORMS.build(dict(type='RandomResizedCrop', size=16))
    img = np.random.default_rng(0).integers(0, 256, (30, 50, 3)).astype(np.uint8)
    np.random.seed(0)
    first = crop(dict(img=img))['img']
    np.random.seed(0)
    assert first.shape == (16, 16, 3) and np.array_equal(first, crop(dict(img=img))['img'])
    full = TRANSFORMS.build(dict(type='RandomResizedCrop', size=30, scale=(1.0, 1.0),
                                 ratio=(1.0, 1.0)))
    square = np.ascontiguousarray(img[:, :30])
    assert np.array_equal(full(dict(img=square))['img'], square)
    # No 1:1 crop of the whole 30x50 area fits: the centre 30x30 square is taken.
    assert np.array_equal(full(dict(img=img))['img'], img[:, 10:40])
    with pytest.raises(ValueError, match='scale must be'):
        TRANSFORMS.build(dict(type='RandomResizedCrop', size=16, scale=(0.5, 0.1)))
    off = TRANSFORMS.build(dict(type='ColorJitter'))
    assert np.array_equal(off(dict(img=img.copy()))['img'], img)
    bright = TRANSFORMS.build(dict(type='ColorJitter', brightness=0.4))
    grey = np.full((4, 4, 3), 100, np.uint8)
    values = {int(bright(dict(img=grey.copy()))['img'][0, 0, 0]) for _ in range(50)}
    assert min(values) >= 60 and max(values) <= 140 and len(values) > 10
    saturation = TRANSFORMS.build(dict(type='ColorJitter', saturation=0.5))
    assert np.array_equal(saturation(dict(img=grey.copy()))['img'], grey)  # grey stays
    with pytest.raises(ValueError, match=r'contrast must be a number in \[0, 1\)'):
        TRANSFORMS.build(dict(type='ColorJitter', contrast=2))


def test_missing_corrupt_and_malformed_inputs(tmp_path, toy_root):
    with pytest.raises(FileNotFoundError, match='nowhere'):
        DATASETS.build(dict(type='ImageFolderDataset', data_root=str(tmp_path),
                            data_prefix=dict(img_path='nowhere/')))
    (tmp_path / 'empty' / 'a').mkdir(parents=True)
    with pytest.raises(ValueError, match='no images found'):
        DATASETS.build(dict(type='ImageFolderDataset', data_root=str(tmp_path),
                            data_prefix=dict(img_path='empty/')))
    ann = tmp_path / 'list.txt'
    ann.write_text('checker/checker_0000.JPEG 0\nghost/missing.JPEG 1\n')
    dataset = _pipeline_dataset(toy_root, data_prefix=dict(img_path='val/'),
                                ann_file=str(ann))
    assert dataset[0]['inputs'].shape == (3, 48, 48)
    with pytest.raises(FileNotFoundError, match='ghost/missing.JPEG does not exist'):
        dataset[1]
    bad = tmp_path / 'bad' / 'cls'
    bad.mkdir(parents=True)
    (bad / 'broken.JPEG').write_bytes(b'\xff\xd8\xff not really a jpeg')
    dataset = _pipeline_dataset(tmp_path, data_prefix=dict(img_path='bad/'))
    with pytest.raises(ValueError, match='cannot decode image .*broken.JPEG'):
        dataset[0]
    for text, match in (('a.JPEG\n', "line 1: expected 'relative/path label'"),
                        ('a.JPEG 0\nb.JPEG 9\n', r'line 2: label 9 must be < 4')):
        ann.write_text(text)
        with pytest.raises(ValueError, match=match):
            DATASETS.build(dict(type='ImageFolderDataset', data_root=str(toy_root),
                                data_prefix=dict(img_path='val/'), ann_file=str(ann),
                                metainfo=dict(classes=CLASSES)))
    with pytest.raises(ValueError, match=r"class folders \['vstripes'\] .* not in"):
        DATASETS.build(dict(type='ImageFolderDataset', data_root=str(toy_root),
                            data_prefix=dict(img_path='val/'),
                            metainfo=dict(classes=CLASSES[:3])))


def test_topk_accuracy():
    metric = METRICS.build(dict(type='TopKAccuracy', topk=(1, 2)))
    scores = torch.tensor([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3], [0.2, 0.3, 0.5],
                           [0.7, 0.2, 0.1]])
    labels = [1, 2, 0, 0]  # top-1 hits: 1st, 4th; top-2 also the 2nd
    metric.process({}, [dict(pred_score=s, gt_label=torch.tensor(l))
                        for s, l in zip(scores, labels)])
    assert metric.evaluate(4) == {'accuracy/top1': 50.0, 'accuracy/top2': 75.0}
    too_many = METRICS.build(dict(type='TopKAccuracy', topk=(1, 5)))
    with pytest.raises(ValueError, match='top-5 of 3 classes'):
        too_many.process({}, [dict(pred_score=scores[0], gt_label=torch.tensor(1))])
    with pytest.raises(ValueError, match='topk must be positive ints'):
        METRICS.build(dict(type='TopKAccuracy', topk=(0,)))


@pytest.fixture(scope='module')
def trained(tmp_path_factory, toy_root):
    """ShuffleNet V2 1.0x trained for 60 iterations at 64x64 through tools/train.py.

    The real ImageNet config, made small: lr 0.02 for a batch of 16, milder crops
    (35-100 % of the area) and no colour jitter, so that a network trained from
    scratch learns within a minute on one core; validation reads the training
    images with the test pipeline (accuracy on the tiny set itself).
    """
    work = tmp_path_factory.mktemp('pretrain')
    options = [
        'model.num_classes=4', 'randomness.seed=0', 'auto_scale_lr.enable=False',
        'optim_wrapper.optimizer.lr=0.02', f'train_cfg.max_epochs={EPOCHS}',
        f'train_cfg.val_interval={EPOCHS}', f'param_scheduler.0.end={EPOCHS}',
        'train_dataloader.batch_size=16', 'val_dataloader.batch_size=16',
        'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
        'train_dataloader.dataset.pipeline.1.size=64',
        'train_dataloader.dataset.pipeline.1.scale=[0.35,1.0]',
        'train_dataloader.dataset.pipeline.2.brightness=0.0',
        'train_dataloader.dataset.pipeline.2.contrast=0.0',
        'train_dataloader.dataset.pipeline.2.saturation=0.0',
        'val_dataloader.dataset.data_prefix.img_path=train/',
        'val_dataloader.dataset.pipeline.1.size=64',
        'val_dataloader.dataset.pipeline.2.crop_size=64', 'val_evaluator.topk=1',
        'default_hooks.logger.interval=1', f'default_hooks.checkpoint.interval={EPOCHS}',
        'env_cfg.cudnn_benchmark=False']
    out = _run(['tools/train.py', SN2, '--data-root', str(toy_root), '--work-dir',
                str(work), '--cfg-options', *options])
    assert out.returncode == 0, out.stderr[-3000:]
    return work


@pytest.mark.slow
def test_training_through_tools_train_learns(trained):
    (scalars,) = glob.glob(str(trained / '*' / 'vis_data' / 'scalars.json'))
    rows = [json.loads(line) for line in Path(scalars).read_text().splitlines()]
    losses = [r['loss'] for r in rows if 'loss' in r]
    assert len(losses) == 2 * EPOCHS
    # Logged losses are means over the last 10 iterations; ln 4 = 1.39 at the start.
    assert np.mean(losses[-5:]) < 0.75 * np.mean(losses[:5]), losses
    (val,) = [r for r in rows if 'accuracy/top1' in r]
    assert val['accuracy/top1'] > 50.0, val  # 4 classes: chance is 25%
    ckpt = safe_torch_load(str(trained / f'epoch_{EPOCHS}.pth'))
    assert ckpt['meta']['epoch'] == EPOCHS
    assert 'fc.weight' in ckpt['state_dict'] and 'backbone.conv1.conv.weight' in ckpt[
        'state_dict']


def test_extract_backbone_then_detector_loads_it(tmp_path, trained):
    src = trained / f'epoch_{EPOCHS}.pth'
    dst = tmp_path / 'sn2_1.0x_pretrained.pth'
    out = _run(['tools/extract_backbone.py', str(src), str(dst)])
    assert out.returncode == 0, out.stderr[-3000:]
    assert "'widen_factor': 1.0" in out.stdout and "'bgr_to_rgb': True" in out.stdout
    extracted = safe_torch_load(str(dst))
    assert extracted['meta']['backbone'] == dict(
        type='ShuffleNetV2', widen_factor=1.0, downsample_split='official', star=False,
        star_act=False, star_proj=False)
    classifier = safe_torch_load(str(src))['state_dict']
    expected = {k[len('backbone.'):]: v for k, v in classifier.items()
                if k.startswith('backbone.')}
    assert set(extracted['state_dict']) == set(expected)

    child = tmp_path / 'lighthead_sn2_pretrained.py'  # the recipe of docs/table7.md
    child.write_text(f"_base_ = '{ROOT / 'configs/lighthead_sn2.py'}'\n"
                     f"model = dict(backbone=dict(init_cfg=dict(\n"
                     f"    _delete_=True, type='Pretrained', checkpoint='{dst}')))\n")
    cfg = Config.fromfile(str(child))
    detector = MODELS.build(cfg.model)
    detector.init_weights()
    loaded = detector.backbone.state_dict()
    # everything up to stage4; conv5 (layers.3), which the detector does not use, is
    # in the file but not in the detector
    assert set(loaded) == {k for k in expected if not k.startswith('layers.3.')}
    assert all(torch.equal(loaded[k], expected[k]) for k in loaded)
    # The stem was trained: a freshly initialised backbone differs from the weights.
    fresh = MODELS.build(dict(cfg.model.backbone, init_cfg=None))
    fresh.init_weights()
    assert not torch.equal(fresh.conv1.conv.weight, expected['conv1.conv.weight'])

    star = Config.fromfile(str(ROOT / 'configs/lighthead_sn2_star.py'))
    star.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(dst))
    with pytest.raises(CheckpointError, match='star=False'):
        MODELS.build(star.model).init_weights()


def test_extract_backbone_rejects_foreign_checkpoints(tmp_path, trained):
    from sn2_det.apis.extract_backbone import extract_backbone
    plain = tmp_path / 'plain.pth'
    torch.save(dict(state_dict={'fc.weight': torch.zeros(2, 2)}), plain)
    with pytest.raises(CheckpointError, match="no 'backbone.' keys"):
        extract_backbone(str(plain), str(tmp_path / 'out.pth'))
    other = tmp_path / 'other.py'
    other.write_text("model = dict(backbone=dict(type='ShuffleNetV2', widen_factor=0.5))\n")
    with pytest.raises(CheckpointError, match='shape mismatches'):
        extract_backbone(str(trained / f'epoch_{EPOCHS}.pth'), str(tmp_path / 'out.pth'),
                         config=str(other))


PRETRAIN_CONFIGS = sorted(glob.glob(str(ROOT / 'configs/pretrain/*_imagenet.py')) +
                          glob.glob(str(ROOT / 'configs/pretrain/table7/*_imagenet.py')))


def test_every_pretrain_config_builds_its_classifier():
    assert len(PRETRAIN_CONFIGS) == 20
    for path in PRETRAIN_CONFIGS:
        model = MODELS.build(Config.fromfile(path).model).eval()
        assert model.fc.in_features == model.backbone.out_channels[-1], path
        assert model.fc.out_features == 1000, path
        name = Path(path).name
        assert getattr(model.backbone, 'star', False) == ('star' in name), path
        assert isinstance(model.dropout, torch.nn.Dropout) == ('2.0x' in name), path


@pytest.mark.parametrize('name', ['xception', 'shufflenet_v1', 'mobilenet_v2'])
def test_comparison_backbones_extract_into_their_table7_detector(tmp_path, name):
    cfg = Config.fromfile(str(ROOT / f'configs/pretrain/table7/{name}_40m_imagenet.py'))
    classifier = MODELS.build(cfg.model)
    for param in classifier.parameters():
        torch.nn.init.normal_(param)
    src, dst = tmp_path / 'classifier.pth', tmp_path / 'backbone.pth'
    torch.save(dict(state_dict=classifier.state_dict(), meta=dict(cfg=cfg.pretty_text)),
               src)
    from sn2_det.apis.extract_backbone import extract_backbone
    meta = extract_backbone(str(src), str(dst))
    assert meta['backbone_config']['name'] == name and 'backbone' not in meta

    detector_cfg = Config.fromfile(str(ROOT / f'configs/table7/lighthead_{name}_40m.py'))
    detector_cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(dst))
    detector = MODELS.build(detector_cfg.model)
    detector.init_weights()
    expected = classifier.backbone.state_dict()
    loaded = detector.backbone.state_dict()
    # the layers past the detector's deepest output (MobileNet v2's final conv) are
    # in the file but not in the detector
    unused = ('conv2.',) if name == 'mobilenet_v2' else ()
    assert set(loaded) == {k for k in expected if not k.startswith(unused)}
    assert all(torch.equal(loaded[k], expected[k]) for k in loaded)

"""mmdet's DetInferencer, as mmdet's docs run it, on every shipped detector config with a
checkpoint of that config; the dataset pipelines keep their bad-input behaviour."""
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmcv.transforms import LoadImageFromFile
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.runner import save_checkpoint

from mmdet.apis import DetInferencer, inference_detector, init_detector
from mmdet.evaluation import get_classes
from mmdet.registry import DATASETS
from sn2_det.datasets import LoadImageSafely
from sn2_det.datasets.transforms import UnreadableImageError
from sn2_det.datasets.toy_shapes import draw_image
from sn2_det.utils.config import build_in_mmdet_scope

ROOT = Path(__file__).resolve().parents[1]
TOY = 'configs/toy/lighthead_sn2_toy.py'
# Every detector config a user can pick: all but the bases, the Table 7 family's
# shared part and the ImageNet (classifier) configs.
DETECTOR_CONFIGS = sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / 'configs').rglob('*.py')
    if not p.name.startswith('_') and p.parent.name != '_base_'
    and 'pretrain' not in p.parts)


def save_fresh_checkpoint(config: str, path: Path) -> dict:
    """A freshly initialised detector of ``config`` in mmengine's checkpoint format,
    every key of the model's state dict (so a strict load accepts it)."""
    cfg = Config.fromfile(str(ROOT / config))
    torch.manual_seed(0)
    model = build_in_mmdet_scope(cfg.model)
    classes = cfg.get('metainfo', {}).get('classes') or get_classes('coco')
    state = {k: v.clone() for k, v in model.state_dict().items()}
    save_checkpoint(dict(meta=dict(dataset_meta=dict(classes=tuple(classes))),
                         state_dict=state), str(path))
    return state


def toy_images(folder: Path, count: int, size=(96, 128)) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    paths = []
    for i in range(count):
        img, _, _ = draw_image(rng, *size, max_objects=3)
        paths.append(folder / f'img{i}.png')
        cv2.imwrite(str(paths[-1]), img)
    return paths


def test_every_detector_config_is_listed():
    names = set(DETECTOR_CONFIGS)
    assert {'configs/lighthead_sn2.py', 'configs/lighthead_sn2_star.py', TOY,
            'configs/swap/faster-rcnn_sn2-1.0x_fpn_1x_coco.py',
            'configs/swap/retinanet_sn2-1.0x_fpn_1x_coco.py',
            'configs/swap/rtmdet_tiny_sn2-1.0x_8xb32-300e_coco.py',
            'configs/swap/yolox_nano_sn2-0.5x_8xb8-300e_coco.py',
            'configs/swap/yolox_tiny_sn2-1.0x_8xb8-300e_coco.py',
            'configs/swap/ssdlite_sn2-1.0x_8xb24-600e_coco.py',
            'configs/swap/gfl_sn2-1.0x_fpn_320_1x_coco.py',
            'configs/swap/fcos_sn2-1.0x_fpn_gn-head_1x_coco.py',
            'configs/swap/mask-rcnn_sn2-1.0x_fpn_1x_coco.py'} <= names
    assert sum(c.startswith('configs/table7/') for c in names) == 20
    assert sum(c.startswith('configs/swap/') for c in names) == 16  # 7 also with V2*


def _inferencer_cases():
    """Every config: the inferencer with its checkpoint; a prediction on a picture too,
    except for the twenty Table 7 cells, whose predictions run under `make test-slow`."""
    for config in DETECTOR_CONFIGS:
        if config.startswith('configs/table7/'):
            yield pytest.param(config, False, id=f'{config}-build')
            yield pytest.param(config, True, id=f'{config}-predict', marks=pytest.mark.slow)
        else:
            yield pytest.param(config, True, id=config)


@pytest.mark.parametrize('config,predict', list(_inferencer_cases()))
def test_det_inferencer_runs_every_shipped_config(config, predict, tmp_path):
    """The inferencer accepts the config, loads the checkpoint's weights and predicts
    on a small picture (the heavy configs resize it to their 800x1200 scale); paths are
    read by mmcv's LoadImageFromFile, the loader the test pipelines name, through the
    file backend that checks images (Light-Head configs; mmdet's for the swaps)."""
    state = save_fresh_checkpoint(config, tmp_path / 'model.pth')
    inferencer = DetInferencer(model=str(ROOT / config), weights=str(tmp_path / 'model.pth'),
                               device='cpu', show_progress=False)
    loaded = inferencer.model.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    from_file = inferencer.pipeline.transforms[0].from_file
    assert type(from_file) is LoadImageFromFile
    checked = None if config.startswith('configs/swap/') else dict(backend='checked_image')
    assert from_file.backend_args == checked
    if not predict:
        return
    image = toy_images(tmp_path / 'in', 1, size=(48, 64))[0]
    result = inferencer(str(image), out_dir=str(tmp_path / 'out'), no_save_pred=False)
    pred = result['predictions'][0]
    assert len(pred['labels']) == len(pred['scores']) == len(pred['bboxes'])
    assert cv2.imread(str(tmp_path / 'out/vis/img0.png')).shape == (48, 64, 3)
    saved = json.loads((tmp_path / 'out/preds/img0.json').read_text())
    assert saved['scores'] == pytest.approx(pred['scores'])


@pytest.fixture(scope='module')
def toy_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp('ckpt') / 'toy.pth'
    save_fresh_checkpoint(TOY, path)
    return path


def _test_dataset(config, folder: Path, images) -> object:
    """The config's test dataset (its pipeline as in evaluation) over ``images``, with
    an annotation file of no boxes written to ``folder``."""
    cfg = Config.fromfile(str(ROOT / config))
    entries = [dict(id=i + 1, file_name=str(path), width=w, height=h)
               for i, (path, (w, h)) in enumerate(images)]
    ann = folder / 'annotations.json'
    ann.write_text(json.dumps(dict(images=entries, annotations=[], categories=[])))
    return DATASETS.build(dict(cfg.test_dataloader.dataset, data_root='', ann_file=str(ann),
                               data_prefix=dict(img='')))


def _predict_through_dataset_pipeline(inferencer, config, image_path):
    """The prediction of the config's own test dataset (as in evaluation), for
    comparison with the inferencer's."""
    h, w = cv2.imread(str(image_path)).shape[:2]
    folder = image_path.parent.parent / f'dataset_{image_path.stem}'
    folder.mkdir(exist_ok=True)
    data = _test_dataset(config, folder, [(image_path, (w, h))])[0]
    assert data['data_samples'].img_unreadable is False
    batch = dict(inputs=[data['inputs']], data_samples=[data['data_samples']])
    with torch.no_grad():
        return inferencer.model.test_step(batch)[0].pred_instances


def test_det_inferencer_on_an_image_a_list_and_a_folder(tmp_path, toy_checkpoint):
    """Drawn pictures and JSON predictions for each input, as mmdet writes them; the
    predictions are those of the config's test pipeline (the safe loader, its resize)."""
    paths = toy_images(tmp_path / 'images', 2)
    inferencer = DetInferencer(model=str(ROOT / TOY), weights=str(toy_checkpoint),
                               device='cpu', show_progress=False)
    cases = (('one', [paths[0]], str(paths[0])),
             ('list', paths[::-1], [str(p) for p in paths[::-1]]),
             ('folder', paths, str(tmp_path / 'images')))
    for name, expected, inputs in cases:
        out = tmp_path / name
        result = inferencer(inputs, out_dir=str(out), no_save_pred=False,
                            pred_score_thr=0.0)
        assert len(result['predictions']) == len(expected)
        for path, pred_in_order in zip(expected, result['predictions']):
            source = cv2.imread(str(path))
            drawn = cv2.imread(str(out / 'vis' / path.name))
            assert drawn.shape == source.shape
            assert np.abs(drawn.astype(int) - source).sum() > 0  # boxes are drawn
            pred = json.loads((out / 'preds' / f'{path.stem}.json').read_text())
            if name != 'folder':  # a folder is read in the order the file system lists it
                assert pred['scores'] == pytest.approx(pred_in_order['scores'])
            reference = _predict_through_dataset_pipeline(inferencer, TOY, path)
            np.testing.assert_allclose(pred['scores'], reference.scores.numpy(), atol=1e-4)
            np.testing.assert_allclose(pred['bboxes'], reference.bboxes.numpy(), atol=1e-2)
    # Nothing above the threshold: the picture is written as it was read.
    inferencer(str(paths[0]), out_dir=str(tmp_path / 'none'), pred_score_thr=1.01)
    drawn = cv2.imread(str(tmp_path / 'none/vis' / paths[0].name))
    np.testing.assert_array_equal(drawn, cv2.imread(str(paths[0])))


def test_det_inferencer_names_an_unreadable_image(tmp_path, toy_checkpoint):
    bad = tmp_path / 'broken.jpg'
    bad.write_bytes(b'\xff\xd8\xff\xe0 not a JPEG')
    inferencer = DetInferencer(model=str(ROOT / TOY), weights=str(toy_checkpoint),
                               device='cpu', show_progress=False)
    with pytest.raises(UnreadableImageError, match='broken.jpg'):
        inferencer(str(bad))


def test_det_inferencer_refuses_a_truncated_jpeg(tmp_path, toy_checkpoint):
    """A JPEG that ends before its end-of-image marker (an interrupted download or
    copy) is refused by name and reason (cv2.imread decodes it with the missing part
    grey); the whole file is predicted on. mmdet's inference_detector reads the same
    way."""
    image = toy_images(tmp_path, 1, size=(96, 128))[0]
    whole = tmp_path / 'whole.jpg'
    cv2.imwrite(str(whole), cv2.imread(str(image)))
    cut = tmp_path / 'cut.jpg'
    cut.write_bytes(whole.read_bytes()[:-200])
    inferencer = DetInferencer(model=str(ROOT / TOY), weights=str(toy_checkpoint),
                               device='cpu', show_progress=False)
    assert len(inferencer(str(whole))['predictions']) == 1
    with pytest.raises(UnreadableImageError, match=r'cut\.jpg: truncated JPEG'):
        inferencer(str(cut))
    model = init_detector(str(ROOT / TOY), str(toy_checkpoint), device='cpu')
    assert len(inference_detector(model, str(whole)).pred_instances.scores) > 0
    with pytest.raises(UnreadableImageError, match=r'cut\.jpg: truncated JPEG'):
        inference_detector(model, str(cut))


@pytest.mark.parametrize('config', ['configs/lighthead_sn2.py', TOY])
def test_dataset_pipelines_keep_their_bad_input_behaviour(config, tmp_path):
    """In evaluation an unreadable image is a marked placeholder of the annotation's
    size; in training it is skipped (None): the same loader as before."""
    cfg = Config.fromfile(str(ROOT / config))
    bad = tmp_path / 'broken.png'
    bad.write_bytes(b'\x89PNG\r\n\x1a\n truncated')
    test = _test_dataset(config, tmp_path, [(bad, (60, 40))]).pipeline
    assert isinstance(test.transforms[0], LoadImageSafely)
    assert test.transforms[0].on_unreadable == 'placeholder'
    data = test(dict(img_path=str(bad), img_id=1, height=40, width=60, instances=[]))
    assert data['data_samples'].img_unreadable is True
    assert data['data_samples'].ori_shape == (40, 60)
    train_load = Compose(cfg.train_dataloader.dataset.pipeline).transforms[0]
    assert isinstance(train_load, LoadImageSafely) and train_load.on_unreadable == 'skip'
    assert train_load(dict(img_path=str(bad), height=40, width=60)) is None


def test_mmdet_docs_snippet_works_unmodified(tmp_path, toy_checkpoint):
    """mmdet's documented snippet in a fresh interpreter that never imported sn2_det:
    the config's custom_imports must be enough."""
    image = toy_images(tmp_path, 1)[0]
    snippet = (
        'from mmdet.apis import DetInferencer\n'
        f'inferencer = DetInferencer(model={str(ROOT / TOY)!r}, weights={str(toy_checkpoint)!r})\n'
        f'inferencer({str(image)!r}, out_dir="outputs", no_save_pred=False)\n')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env.pop('PYTHONPATH', None)
    run = subprocess.run([sys.executable, '-c', snippet], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / 'outputs/vis/img0.png').is_file()
    assert (tmp_path / 'outputs/preds/img0.json').is_file()

"""The bundled default run of ``make demo``: generate the toy dataset, train the
Light-Head ShuffleNet V2 toy detector on it, evaluate it (COCO metrics), and draw what a
person wants to see: held-out images with their ground truth beside the predictions,
and the loss and mmAP curves of the run (read from mmengine's ``scalars.json``)."""
import glob
import json
import os.path as osp
import time
from typing import Dict, List, Optional

import numpy as np

from ..datasets.toy_shapes import generate_toy_shapes
from .inference import FrameDetector, load_detector, read_image
from .runner import load_config, set_data_root, train
from ..utils.errors import MissingFileError

TOY_CONFIG = 'configs/toy/lighthead_sn2_toy.py'
# Class colours of the pictures (matplotlib's tab10, readable on the toy backgrounds).
_COLOURS = ('#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b',
            '#e377c2', '#7f7f7f', '#bcbd22', '#17becf')


def read_scalars(work_dir: str) -> Dict[str, List[dict]]:
    """Training rows (with ``loss``) and validation rows (with ``*bbox_mAP``) of one
    run's log dir (``<work_dir>/<timestamp>``), or of every run in ``work_dir``
    (``<timestamp>/vis_data/scalars.json``, oldest first; a resumed run's rows replace
    the rows of the same step)."""
    own = osp.join(work_dir, 'vis_data', 'scalars.json')
    files = [own] if osp.isfile(own) else sorted(
        glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not files:
        raise MissingFileError(f'no {osp.join("<timestamp>", "vis_data", "scalars.json")} '
                               f'under {work_dir}: is it the work dir of an mmengine run '
                               f'with LocalVisBackend?')
    train_rows, val_rows = {}, {}
    for path in files:
        with open(path) as f:
            for line in f:
                row = json.loads(line)
                if 'loss' in row:
                    train_rows[row['step']] = row
                elif any(key.endswith('bbox_mAP') for key in row):
                    val_rows[row['step']] = row
    return dict(train=[train_rows[k] for k in sorted(train_rows)],
                val=[val_rows[k] for k in sorted(val_rows)])


def plot_curves(work_dir: str, out: str, title: str = '') -> Dict[str, list]:
    """Losses against iteration and bbox mmAP / AP50 / AP75 against epoch, as one PNG
    (``work_dir`` as in :func:`read_scalars`). Returns the plotted series."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    rows = read_scalars(work_dir)
    series = {}
    fig, (ax_loss, ax_map) = plt.subplots(1, 2, figsize=(14, 5.5), dpi=100)
    steps = [r['step'] for r in rows['train']]
    loss_keys = sorted({k for r in rows['train'] for k in r if k.startswith('loss')},
                       key=lambda k: (k != 'loss', k))
    for key in loss_keys:
        values = [r.get(key, np.nan) for r in rows['train']]
        series[key] = list(zip(steps, values))
        ax_loss.plot(steps, values, lw=2.5 if key == 'loss' else 1.2,
                     label='total loss' if key == 'loss' else key)
    ax_loss.set(xlabel='iteration', ylabel='loss', title='training losses (logged every '
                f'{steps[1] - steps[0] if len(steps) > 1 else 1} iterations)')
    ax_loss.set_yscale('log')
    ax_loss.grid(alpha=0.3)
    ax_loss.legend(fontsize=9)
    epochs = [r['step'] for r in rows['val']]
    for suffix, label in (('bbox_mAP', 'bbox mmAP (AP@[.50:.95])'),
                          ('bbox_mAP_50', 'AP@.50'), ('bbox_mAP_75', 'AP@.75')):
        key = next((k for r in rows['val'] for k in r if k.endswith('/' + suffix)), None)
        if key is None:
            continue
        values = [r.get(key, np.nan) for r in rows['val']]
        series[key] = list(zip(epochs, values))
        ax_map.plot(epochs, values, marker='o', lw=2.5 if suffix == 'bbox_mAP' else 1.2,
                    label=label)
        if suffix == 'bbox_mAP' and values:
            ax_map.annotate(f'{values[-1]:.3f}', (epochs[-1], values[-1]),
                            textcoords='offset points', xytext=(-10, 8), fontsize=11)
    ax_map.set(xlabel='epoch', ylabel='COCO AP', ylim=(0, 1),
               title='held-out split, after each evaluation')
    ax_map.grid(alpha=0.3)
    ax_map.legend(fontsize=9, loc='lower right')
    if title:
        fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return series


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def matched(pred_boxes, pred_labels, gt_boxes, gt_labels, iou_thr: float = 0.5):
    """Whether each prediction overlaps a ground-truth box of its class at
    ``iou_thr`` or more (drawn solid; the others dashed)."""
    if len(pred_boxes) == 0 or len(gt_boxes) == 0:
        return np.zeros(len(pred_boxes), bool)
    ious = _iou(np.asarray(pred_boxes, float), np.asarray(gt_boxes, float))
    same = np.asarray(pred_labels)[:, None] == np.asarray(gt_labels)[None, :]
    return ((ious >= iou_thr) & same).any(1)


def _draw_boxes(ax, image, boxes, labels, classes, scores=None, solid=None) -> None:
    from matplotlib.patches import Rectangle
    ax.imshow(image[:, :, ::-1], interpolation='bilinear')
    for i, (box, label) in enumerate(zip(boxes, labels)):
        x1, y1, x2, y2 = (float(v) for v in box)
        colour = _COLOURS[int(label) % len(_COLOURS)]
        style = '-' if solid is None or solid[i] else '--'
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=colour,
                               lw=2.5, linestyle=style))
        text = classes[int(label)] + ('' if scores is None else f' {float(scores[i]):.2f}')
        inside = y1 < 0.08 * image.shape[0]  # no room above: the label goes inside
        ax.text(x1 + (2 if inside else 0), y1 + 2 if inside else y1 - 2, text, fontsize=10,
                color='white', va='top' if inside else 'bottom',
                bbox=dict(facecolor=colour, edgecolor='none', pad=1.5, alpha=0.9))
    ax.set_xticks([])
    ax.set_yticks([])


def draw_grid(model, ann_file: str, image_dir: str, out: str, num_images: int = 12,
              score_thr: float = 0.5, columns: int = 3, headline: str = '') -> List[dict]:
    """The first ``num_images`` images of a COCO split, each as two panels: ground
    truth (left) and the predictions at or above ``score_thr`` (right), enlarged to
    about 400 pixels a panel. Returns what each panel pair shows."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    with open(ann_file) as f:
        coco = json.load(f)
    cat_index = {c['id']: i for i, c in enumerate(coco['categories'])}
    images = sorted(coco['images'], key=lambda im: im['id'])[:num_images]
    detector = FrameDetector(model, score_thr)
    classes = detector.classes
    rows = (len(images) + columns - 1) // columns
    # pairs of panels, a narrow empty column between pairs
    ratios = ([1, 1, 0.12] * columns)[:-1]
    fig, grid = plt.subplots(rows, len(ratios), dpi=100, squeeze=False,
                             figsize=(4.2 * (2 * columns + 0.12 * (columns - 1)),
                                      4.2 * rows + 1.4),
                             gridspec_kw=dict(width_ratios=ratios))
    for ax in grid.flat:
        ax.axis('off')
    axes = grid[:, [c for c in range(len(ratios)) if c % 3 != 2]]
    shown = []
    for n, info in enumerate(images):
        image = read_image(osp.join(image_dir, info['file_name']))
        anns = [a for a in coco['annotations'] if a['image_id'] == info['id']]
        gt_boxes = [[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2],
                     a['bbox'][1] + a['bbox'][3]] for a in anns]
        gt_labels = [cat_index[a['category_id']] for a in anns]
        boxes, labels, scores = detector(image)
        hit = matched(boxes, labels, gt_boxes, gt_labels)
        row, col = divmod(n, columns)
        ax_gt, ax_pred = axes[row, 2 * col], axes[row, 2 * col + 1]
        for ax in (ax_gt, ax_pred):
            ax.axis('on')
        _draw_boxes(ax_gt, image, gt_boxes, gt_labels, classes)
        _draw_boxes(ax_pred, image, boxes, labels, classes, scores, hit)
        ax_gt.set_title(f'{info["file_name"]}: ground truth: {len(gt_boxes)}', fontsize=11)
        dashed = int((~hit).sum())
        ax_pred.set_title(f'predictions: {len(scores)}' + (f' ({dashed} dashed)' if dashed
                                                          else ''), fontsize=11)
        shown.append(dict(file_name=info['file_name'], gt=len(gt_boxes),
                          predictions=len(scores), unmatched=dashed,
                          min_score=float(scores.min()) if len(scores) else None))
    handles = [Line2D([], [], color=_COLOURS[i % len(_COLOURS)], lw=3, label=name)
               for i, name in enumerate(classes)]
    handles.append(Line2D([], [], color='k', lw=2, ls='--',
                          label='no ground-truth box of that class at IoU >= 0.5'))
    fig.legend(handles=handles, loc='lower center', ncol=len(handles), fontsize=12,
               frameon=False)
    if headline:
        fig.suptitle(headline, fontsize=14)
    fig.tight_layout(rect=(0, 0.03, 1, 0.95 if headline else 1))
    fig.savefig(out)
    plt.close(fig)
    return shown


def _nms_iou(model) -> Optional[float]:
    rcnn = model.cfg.model.get('test_cfg', {}).get('rcnn', {})
    return rcnn.get('nms', {}).get('iou_threshold')


def run_demo(config: str = TOY_CONFIG, work_dir: str = 'work_dirs/demo',
             cfg_options: Optional[dict] = None, data_root: Optional[str] = None,
             dataset_args: Optional[dict] = None, val_interval: int = 2,
             num_images: int = 12, score_thr: float = 0.5) -> dict:
    """Train and evaluate ``config`` on the toy dataset (generated under ``data_root``,
    default the config's, with ``dataset_args`` for ``generate_toy_shapes``), with an
    evaluation every ``val_interval`` epochs for the mmAP curve, then draw
    ``work_dir/predictions.png`` and ``work_dir/curves.png``."""
    cfg = load_config(config, work_dir=work_dir, cfg_options=cfg_options)
    root = data_root or cfg.data_root
    anns = generate_toy_shapes(root, **(dataset_args or {}))
    if data_root:
        set_data_root(cfg, data_root)
    cfg.train_cfg.val_interval = val_interval
    # mmdet's runtime names its visualizer 'visualizer', so a second run in one process
    # would log into the first run's dir; without the name, each run gets its own
    cfg.visualizer.pop('name', None)
    print(f'toy dataset ready under {root} ({anns["train"]})')
    start = time.time()
    runner = train(cfg)
    minutes = (time.time() - start) / 60
    mmap = runner.message_hub.get_scalar('val/coco/bbox_mAP').current()
    checkpoint = osp.join(work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')

    model = load_detector(cfg, checkpoint, device='cpu')  # with the run's cfg_options
    val_set = cfg.val_dataloader.dataset
    image_dir = osp.join(val_set.data_root, val_set.data_prefix['img'])
    nms = _nms_iou(model)
    pictures = dict(predictions=osp.join(work_dir, 'predictions.png'),
                    curves=osp.join(work_dir, 'curves.png'))
    backbone = cfg.model.backbone
    width = f' {backbone.widen_factor}x' if 'widen_factor' in backbone else ''
    headline = (f'{cfg.model.type}, {backbone.type}{width}, held-out toy images: bbox mmAP '
                f'{mmap:.3f} on this machine (all {_count_images(anns["val"])} images)\n'
                f'left ground truth, right predictions with score >= {score_thr} after '
                f"mmdet's class-wise NMS (IoU {nms})")
    shown = draw_grid(model, anns['val'], image_dir, pictures['predictions'], num_images,
                      score_thr, headline=headline)
    plot_curves(runner.log_dir, pictures['curves'],
                title=f'{osp.basename(config)}: {minutes:.1f} min of training and evaluation')
    print(f'\nbbox mmAP (COCO AP@[.50:.95]) on the held-out split: {mmap:.3f} after '
          f'{minutes:.1f} min of training and evaluation.\nThe run is seeded, but float '
          f'rounding differs between CPUs and math libraries, so other machines give '
          f'another figure near it (docs/demo.md lists the figures measured).')
    print(f'pictures: {pictures["predictions"]} ({len(shown)} held-out images, ground '
          f'truth beside predictions with score >= {score_thr})\n'
          f'          {pictures["curves"]} (losses and mmAP of this run)')
    return dict(mmap=mmap, minutes=minutes, checkpoint=checkpoint, shown=shown, **pictures)


def _count_images(ann_file: str) -> int:
    with open(ann_file) as f:
        return len(json.load(f)['images'])

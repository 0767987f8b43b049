"""Paper Table 7 reproduced: speed (and mmAP, from evaluation results) of the twenty
Light-Head R-CNN configs in ``configs/table7``, beside the paper's figures.

Speeds are measured level by level, the five backbones of a level interleaved
(:func:`sn2_det.analysis.benchmark.compare`), so the ratios the paper states
(ShuffleNet v2 about 1.4x ShuffleNet v1 and 1.16x MobileNet v2) are read from one run.
"""
import csv
import json
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..models.backbones.table7 import TABLE7_BACKBONES, TABLE7_LEVELS
from ..utils.validation import check_choice
from .benchmark import compare
from .paper import TABLE7 as PAPER
from ..utils.errors import DataError, MissingFileError

CONFIG_DIR = Path(__file__).resolve().parents[2] / 'configs' / 'table7'
LABELS = dict(xception='Xception', shufflenet_v1='ShuffleNet v1',
              mobilenet_v2='MobileNet v2', shufflenet_v2='ShuffleNet v2',
              shufflenet_v2_star='ShuffleNet v2*')
Cell = Tuple[str, int]


def cell_config(name: str, level: int) -> str:
    check_choice('backbone', name, TABLE7_BACKBONES)
    check_choice('level', level, TABLE7_LEVELS)
    return str(CONFIG_DIR / f'lighthead_{name}_{level}m.py')


def cell_of_config(path: str) -> Optional[Cell]:
    stem = Path(path).stem
    for name in TABLE7_BACKBONES:
        for level in TABLE7_LEVELS:
            if stem == f'lighthead_{name}_{level}m':
                return name, level
    return None


def measure_speeds(names: Sequence[str], levels: Sequence[int], batch: int = 4,
                   shape=(800, 1200), rounds: int = 5, warmup: int = 2,
                   device: str = 'cpu') -> Dict[Cell, dict]:
    speeds = {}
    for level in levels:
        rows = compare([cell_config(n, level) for n in names], batch=batch, shape=shape,
                       rounds=rounds, warmup=warmup, device=device)
        speeds.update({(n, level): row for n, row in zip(names, rows)})
    return speeds


def read_mmaps(result_files: Iterable[str]) -> Dict[Cell, float]:
    """mmAP (%) per cell from ``tools/test.py --metrics-json`` files; a file that is
    missing, not JSON or not the metrics of a configs/table7 cell is named."""
    mmaps = {}
    for path in result_files:
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise MissingFileError(f'--results {path}: no such file') from None
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise DataError(f'--results {path}: not a JSON file of tools/test.py '
                            f'--metrics-json ({err})') from err
        metrics = data.get('metrics') if isinstance(data, dict) else None
        cell = cell_of_config(data.get('config', '')) if isinstance(data, dict) else None
        if cell is None or not isinstance(metrics, dict) \
                or not isinstance(metrics.get('coco/bbox_mAP'), (int, float)):
            raise DataError(f'{path}: not the metrics of a configs/table7 cell '
                            '(expected keys config and metrics["coco/bbox_mAP"])')
        mmaps[cell] = 100 * metrics['coco/bbox_mAP']
    return mmaps


def _pair(ours: Optional[float], paper: float, fmt: str) -> str:
    return (f'{ours:{fmt}}' if ours is not None else '-') + f' ({paper:{fmt}})'


def table_rows(speeds: Dict[Cell, dict], mmaps: Dict[Cell, float]) -> List[dict]:
    rows = []
    for name in TABLE7_BACKBONES:
        row = dict(backbone=LABELS[name])
        for level in TABLE7_LEVELS:
            paper_map, paper_speed = PAPER[name][level]
            speed = speeds.get((name, level))
            row[f'mmAP {level}M'] = _pair(mmaps.get((name, level)), paper_map, '.1f')
            row[f'img/s {level}M'] = _pair(speed and speed['img_per_s'], paper_speed, '.1f')
        rows.append(row)
    return rows


def ratio_lines(speeds: Dict[Cell, dict]) -> List[str]:
    """ShuffleNet v2's speed over ShuffleNet v1's and MobileNet v2's, ours and paper's."""
    lines = []
    for level in TABLE7_LEVELS:
        for other in ('shufflenet_v1', 'mobilenet_v2'):
            a, b = speeds.get(('shufflenet_v2', level)), speeds.get((other, level))
            if a and b:
                paper = PAPER['shufflenet_v2'][level][1] / PAPER[other][level][1]
                lines.append(f'{level}M: ShuffleNet v2 / {LABELS[other]} = '
                             f'{a["img_per_s"] / b["img_per_s"]:.2f}x (paper {paper:.2f}x)')
    return lines


def markdown(rows: List[dict], ratios: List[str], header: str) -> str:
    keys = list(rows[0])
    out = [header, '', '| ' + ' | '.join(keys) + ' |', '|' + '---|' * len(keys)]
    out += ['| ' + ' | '.join(row[k] for k in keys) + ' |' for row in rows]
    out += ['', 'ours (paper). Speed ratios from one interleaved run:', '']
    out += [f'- {line}' for line in ratios]
    return '\n'.join(out) + '\n'


def plot(speeds: Dict[Cell, dict], mmaps: Dict[Cell, float], path: str,
         device: str = 'ours') -> None:
    """Speed against mmAP, as the paper's Figure 1: the paper's points (GTX 1080Ti)
    on the left, ours on the right with its own speed axis (at our mmAP where
    measured, else at the paper's mmAP, marked 'x')."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5), sharey=True)
    for i, name in enumerate(TABLE7_BACKBONES):
        colour = f'C{i}'
        paper = [PAPER[name][lv] for lv in TABLE7_LEVELS]
        left.plot([p[1] for p in paper], [p[0] for p in paper], 'o--', color=colour,
                  label=LABELS[name])
        ours = [(speeds[(name, lv)]['img_per_s'], mmaps.get((name, lv)), PAPER[name][lv][0])
                for lv in TABLE7_LEVELS if (name, lv) in speeds]
        measured = [o for o in ours if o[1] is not None]
        assumed = [o for o in ours if o[1] is None]
        if measured:
            right.plot([o[0] for o in measured], [o[1] for o in measured], 'o-',
                       color=colour, label=f'{LABELS[name]}')
        if assumed:
            right.plot([o[0] for o in assumed], [o[2] for o in assumed], 'x--', color=colour,
                       ms=8, label=f'{LABELS[name]} (paper mmAP)')
    left.set_title('paper (GTX 1080Ti)')
    right.set_title(f'ours ({device})')
    for ax in (left, right):
        ax.set_xlabel('images / s (batch 4)')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    left.set_ylabel('COCO mmAP (%)')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(out_dir: str, speeds: Dict[Cell, dict], mmaps: Dict[Cell, float],
                  header: str, device: str = 'ours') -> Dict[str, str]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = table_rows(speeds, mmaps)
    paths = dict(md=str(out / 'table7.md'), csv=str(out / 'table7.csv'),
                 png=str(out / 'table7.png'), json=str(out / 'table7.json'))
    Path(paths['md']).write_text(markdown(rows, ratio_lines(speeds), header))
    with open(paths['csv'], 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['backbone', 'level_mflops', 'mmap', 'paper_mmap', 'img_per_s',
                         'paper_img_per_s', 'spread_pct'])
        for name in TABLE7_BACKBONES:
            for level in TABLE7_LEVELS:
                speed = speeds.get((name, level), {})
                mmap = mmaps.get((name, level))
                writer.writerow([name, level, '' if mmap is None else f'{mmap:.1f}',
                                 PAPER[name][level][0],
                                 f'{speed["img_per_s"]:.2f}' if speed else '',
                                 PAPER[name][level][1],
                                 f'{speed["spread_pct"]:.1f}' if speed else ''])
    Path(paths['json']).write_text(json.dumps(
        [dict(backbone=n, level=lv, mmap=mmaps.get((n, lv)), **speeds[(n, lv)])
         for n, lv in speeds], indent=1))
    plot(speeds, mmaps, paths['png'], device)
    return paths

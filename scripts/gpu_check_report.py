"""Summarise a tools/gpu_check.sh run: ``python scripts/gpu_check_report.py RESULTS``.

Reads RESULTS/steps.jsonl (one line a step), RESULTS/logs/imports.log (the versions
and the GPU), RESULTS/table7/table7.md and .json, RESULTS/test/metrics.json and the
training logs; writes RESULTS/gpu_check.json and RESULTS/gpu_check.md and prints the
markdown. Standard library only: it runs with the base interpreter, also when the
stack did not install (so it does not use sn2_det's run_tool).
"""
import json
import re
import sys
from pathlib import Path


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _last_losses(log: Path) -> dict:
    """The last ``loss: ...`` figures and the memory an mmengine training log shows."""
    try:
        lines = [line for line in log.read_text().splitlines() if 'Epoch(train)' in line]
    except OSError:
        return {}
    if not lines:
        return {}
    found = dict(re.findall(r'\b(loss(?:_\w+)?|memory): ([-\d.e+naif]+)', lines[-1]))
    return dict(found, iterations_logged=len(lines))


def summarise(results: Path) -> dict:
    steps = [json.loads(line) for line in (results / 'steps.jsonl').read_text().splitlines()
             if line.strip()]
    versions = ''
    imports = results / 'logs' / 'imports.log'
    if any(s['step'] == 'imports' and s['status'] == 'passed' for s in steps):
        lines = imports.read_text().strip().splitlines()
        versions = lines[-1] if lines else ''
    summary = dict(
        passed=bool(steps) and all(s['status'] == 'passed' for s in steps),
        steps=steps, versions=versions,
        seconds=round(sum(s['seconds'] for s in steps), 1),
        table7=_read_json(results / 'table7' / 'table7.json'),
        test_metrics=_read_json(results / 'test' / 'metrics.json'),
        training={name: _last_losses(log) for name in ('train_amp', 'train_fp32')
                  for log in [results / 'logs' / f'{name}.log'] if log.exists()})
    return summary


def markdown(summary: dict, results: Path) -> str:
    out = ['# GPU check', '', summary['versions'] or '(the stack did not import)', '',
           f'Steps: {"all passed" if summary["passed"] else "not all passed"}, '
           f'{summary["seconds"]} s in all.', '', '| step | status | s | detail |',
           '|---|---|---|---|']
    for s in summary['steps']:
        detail = ' '.join(s['detail'].split())[:200].replace('|', '/')
        out.append(f'| {s["step"]} | {s["status"]} | {s["seconds"]:.1f} | {detail} |')
    for name, losses in summary['training'].items():
        if losses:
            out += ['', f'{name}: last logged ' + ', '.join(
                f'{k} {v}' for k, v in losses.items())]
    if summary['test_metrics']:
        metrics = summary['test_metrics'].get('metrics', {})
        out += ['', 'test: ' + ', '.join(f'{k} {v}' for k, v in metrics.items()
                                         if 'bbox_mAP' in k)]
    table = results / 'table7' / 'table7.md'
    if table.exists():
        out += ['', table.read_text().strip()]
    return '\n'.join(out) + '\n'


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not (Path(args[0]) / 'steps.jsonl').is_file():
        print('usage: python scripts/gpu_check_report.py RESULTS (the folder of '
              'tools/gpu_check.sh, with steps.jsonl)', file=sys.stderr)
        return 2
    results = Path(args[0])
    summary = summarise(results)
    (results / 'gpu_check.json').write_text(json.dumps(summary, indent=1))
    text = markdown(summary, results)
    (results / 'gpu_check.md').write_text(text)
    print(text)
    print(f'written: {results / "gpu_check.json"}, {results / "gpu_check.md"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

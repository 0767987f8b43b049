"""scripts/gpu_bundle.sh and tools/gpu_check.sh as far as a CPU machine allows (slow).

A GPU machine has Python 3.12 with torch, torchvision, numpy, opencv, Pillow and
pytest, and no network. Here: a venv whose only packages are those of this Python
(torch, numpy, opencv, Pillow, pytest and what they need, linked from the running
environment) plays its interpreter; the bundle is built for this Python with the
compiled mmcv wheel of this environment in place of mmcv's source (compiling it
takes 10 minutes on 2 cores). Building the bundle downloads the wheels: it needs
the network once.
"""
import importlib.metadata as metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MACHINE_PACKAGES = ('torch', 'numpy', 'opencv-python-headless', 'pillow', 'pytest', 'pip')
GPU_STEPS = ['ops', 'table7', 'train_amp', 'train_fp32', 'test']

pytestmark = pytest.mark.slow


def _closure(names):
    """The installed distributions ``names`` and those they require (no extras)."""
    seen, todo = {}, list(names)
    while todo:
        name = re.split(r'[ ;<>=!~\[(]', todo.pop())[0].lower().replace('_', '-')
        if not name or name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[name] = dist
        todo += [r for r in dist.requires or [] if 'extra ==' not in r]
    return list(seen.values())


def _machine_venv(path: Path) -> str:
    """A venv that sees only MACHINE_PACKAGES (and their requirements) of this one."""
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(path)], check=True)
    python = path / 'bin' / 'python'
    site = Path(subprocess.run(
        [str(python), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
        capture_output=True, text=True, check=True).stdout.strip())
    for dist in _closure(MACHINE_PACKAGES):
        tops = {Path(str(f)).parts[0] for f in dist.files or []
                if not str(f).startswith('..')}
        for top in tops:
            source = Path(dist.locate_file(top))
            if source.exists() and not (site / top).exists() and top != '__pycache__':
                (site / top).symlink_to(source)
    return str(python)


@pytest.fixture(scope='module')
def bundle(tmp_path_factory):
    cached = Path.home() / '.cache' / 'sn2_det'
    wheels = sorted(cached.glob(f'mmcv-2.1.0-*-py{sys.version_info[0]}{sys.version_info[1]}'
                                '/mmcv-*.whl'))
    if not wheels:
        pytest.skip(f'no compiled mmcv wheel for this Python under {cached} '
                    '(scripts/install.sh caches it)')
    path = tmp_path_factory.mktemp('bundle')
    pins = '' if sys.version_info >= (3, 12) else 'scipy==1.17.1 contourpy==1.3.3'
    out = subprocess.run(
        ['bash', 'scripts/gpu_bundle.sh'], cwd=ROOT, capture_output=True, text=True,
        env=dict(os.environ, PY=sys.executable, BUNDLE=str(path), LIMIT_MIB='128',
                 PYVER=f'{sys.version_info[0]}.{sys.version_info[1]}', PINS=pins,
                 MMCV_WHEEL=str(wheels[-1])), timeout=900)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert 'gpu bundle' in out.stdout
    return path


def _check(bundle, tmp_path, **env):
    venv = tmp_path / 'machine'
    python = _machine_venv(venv)
    results = tmp_path / 'results'
    clean = {k: v for k, v in os.environ.items()
             if k not in ('PYTHONPATH', 'VIRTUAL_ENV', 'OUT')}
    out = subprocess.run(
        ['bash', 'tools/gpu_check.sh'], cwd=ROOT, capture_output=True, text=True,
        env=dict(clean, PYTHON=python, BUNDLE=str(bundle), VENV=str(venv),
                 RESULTS=str(results), OMP_NUM_THREADS='1', **env), timeout=1500)
    log = out.stdout + out.stderr
    summary = json.loads((results / 'gpu_check.json').read_text())
    return out, log, summary, results


def test_bundle_installs_offline_and_gpu_steps_skip_without_cuda(bundle, tmp_path):
    out, log, summary, results = _check(bundle, tmp_path)
    status = {s['step']: s for s in summary['steps']}
    assert [status[n]['status'] for n in ('bundle', 'install', 'mmcv', 'imports')] == \
        ['passed'] * 4, log[-3000:]
    assert 'mmdet 3.3.0' in summary['versions'] and 'GPU: none' in summary['versions']
    for name in GPU_STEPS:
        assert status[name]['status'] == 'skipped'
        assert status[name]['detail'] == ('no CUDA device: torch.cuda.is_available() '
                                          'is False on this machine')
    assert out.returncode == 0
    assert '| ops | skipped |' in (results / 'gpu_check.md').read_text()


def test_a_damaged_bundle_is_refused(bundle, tmp_path):
    broken = tmp_path / 'bundle'
    subprocess.run(['cp', '-r', str(bundle), str(broken)], check=True)
    wheel = next((broken / 'wheels').glob('mmengine-*.whl'))
    wheel.write_bytes(wheel.read_bytes()[:-10])
    out, log, summary, _ = _check(broken, tmp_path)
    assert out.returncode == 1
    assert summary['steps'][0]['step'] == 'bundle'
    assert summary['steps'][0]['status'] == 'failed'
    assert 'mmengine' in summary['steps'][0]['detail']
    assert {s['status'] for s in summary['steps'][1:]} == {'skipped'}


def test_every_step_runs_on_the_cpu_at_small_sizes(bundle, tmp_path):
    """DEVICE=cpu SMALL=1: the GPU steps' commands, on the CPU (one Table 7 cell;
    mmengine trains with --amp on a GPU only)."""
    out, log, summary, results = _check(bundle, tmp_path, DEVICE='cpu', SMALL='1')
    status = {s['step']: s for s in summary['steps']}
    assert status.pop('train_amp')['status'] == 'skipped'
    failed = [s for s in status.values() if s['status'] != 'passed']
    assert not failed, (failed, log[-3000:])
    assert out.returncode == 0
    assert [r['backbone'] for r in summary['table7']] == ['shufflenet_v2']
    assert 'loss' in summary['training']['train_fp32']
    assert 'coco/bbox_mAP' in summary['test_metrics']['metrics']
    text = (results / 'gpu_check.md').read_text()
    assert 'Table 7, ours (paper)' in text and 'CPU' in text

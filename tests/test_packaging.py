"""The package as `pip install` gives it: a wheel built from the checkout ships the
configs and the model index and declares its dependencies; installed into a fresh
virtual environment (reusing the project's compiled stack), it lets a user config
outside the repository inherit a shipped config and train through mmdet's
tools/train.py. The tests that build the wheel are slow (`make test-slow`)."""
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from email.parser import Parser
from pathlib import Path

import mmdet
import pytest
from packaging.requirements import Requirement

from sn2_det.datasets.toy_shapes import generate_toy_shapes

ROOT = Path(__file__).resolve().parents[1]
MMDET_TRAIN = Path(mmdet.__file__).parent / '.mim' / 'tools' / 'train.py'


def _requirements(name: str) -> list:
    lines = (ROOT / 'requirements' / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith('#')]


def _key(requirement: str) -> tuple:
    req = Requirement(requirement)
    return req.name.lower(), str(req.specifier)


def _copy_checkout(dst: Path) -> None:
    """The files git would give a clone (tracked and new, not ignored), links kept."""
    files = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard'], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split('\n')
    for name in filter(None, files):
        src, target = ROOT / name, dst / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            target.symlink_to(os.readlink(src))
        elif src.is_file():
            shutil.copy2(src, target)


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    src = tmp_path_factory.mktemp('checkout')
    _copy_checkout(src)
    dist = tmp_path_factory.mktemp('dist')
    run = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-index',
                          '--no-build-isolation', '-w', str(dist), str(src)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    wheels = list(dist.glob('sn2_det-*.whl'))
    assert len(wheels) == 1
    return wheels[0]


@pytest.mark.slow
def test_wheel_ships_every_config_and_the_model_index(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = sorted(p.relative_to(ROOT / 'configs').as_posix()
                     for p in (ROOT / 'configs').rglob('*.py'))
    assert len(configs) > 30
    missing = [c for c in configs if f'sn2_det/.mim/configs/{c}' not in names]
    assert not missing, missing
    assert {'sn2_det/.mim/model-index.yml', 'sn2_det/.mim/metafile.yml',
            'sn2_det/__init__.py'} <= names
    assert not any(n.startswith(('configs/', 'tests/', 'tools/')) for n in names)


@pytest.mark.slow
def test_wheel_declares_its_dependencies(wheel):
    with zipfile.ZipFile(wheel) as archive:
        meta_name = next(n for n in archive.namelist() if n.endswith('.dist-info/METADATA'))
        meta = Parser().parsestr(archive.read(meta_name).decode())
    requires = meta.get_all('Requires-Dist')
    plain = {_key(r) for r in requires if 'extra ==' not in r}
    expected = _requirements('openmmlab.txt') + _requirements('runtime.txt')
    assert plain == {_key(r) for r in expected}
    assert {_key(r) for r in ('mmdet==3.3.0', 'mmengine==0.10.7', 'torch>=2.1',
                              'seaborn')} <= plain
    # mmcv is the documented manual step: pip would build it without its ops.
    assert not any(r.startswith('mmcv') for r in requires)
    assert 'mmcv 2.1.0' in meta['Summary'] and 'scripts/install.sh' in meta.get_payload()
    assert 'tests' in meta.get_all('Provides-Extra')


@pytest.mark.slow
def test_user_config_outside_the_repository_trains_from_the_installed_wheel(
        wheel, tmp_path):
    """A fresh venv sees the project's compiled stack through a .pth file (no second
    mmcv build) and gets sn2_det only from the wheel; the user's project is a folder
    elsewhere with one config that inherits the toy config by the documented line."""
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True)
    python = venv / 'bin' / 'python'
    site = subprocess.run([str(python), '-c', 'import sysconfig; print(sysconfig.get_paths()'
                           '["purelib"])'], capture_output=True, text=True,
                          check=True).stdout.strip()
    Path(site, 'project_stack.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env.pop('PYTHONPATH', None)
    install = subprocess.run([str(python), '-m', 'pip', 'install', '--no-deps', '--no-index',
                              str(wheel)], capture_output=True, text=True, env=env)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]

    user = tmp_path / 'my_project'
    (user / 'configs').mkdir(parents=True)
    (user / 'configs' / 'my_toy.py').write_text(
        "_base_ = __import__('sn2_det').config_file('toy/lighthead_sn2_toy.py')\n"
        "train_cfg = dict(max_epochs=1, val_interval=1)\n")
    generate_toy_shapes(str(user / 'data/toy_shapes'), num_train=2, num_val=2, seed=4)
    where = subprocess.run([str(python), '-c', 'import sn2_det; print(sn2_det.__file__); '
                            "print(sn2_det.config_file('lighthead_sn2.py'))"],
                           cwd=user, env=env, capture_output=True, text=True)
    assert where.returncode == 0, where.stderr[-2000:]
    assert all(line.startswith(site) for line in where.stdout.split()), where.stdout

    run = subprocess.run([str(python), str(MMDET_TRAIN), 'configs/my_toy.py',
                          '--work-dir', 'work'], cwd=user, env=env, capture_output=True,
                         text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert (user / 'work' / 'epoch_1.pth').is_file()
    merged = (user / 'work' / 'my_toy.py').read_text()
    assert "type='LightHeadRCNN'" in merged and 'config_file' not in merged


def test_config_file_names_the_shipped_configs():
    import sn2_det
    path = Path(sn2_det.config_file('toy/lighthead_sn2_toy.py'))
    assert path.read_text() == (ROOT / 'configs/toy/lighthead_sn2_toy.py').read_text()
    with pytest.raises(FileNotFoundError, match=r"did you mean 'toy/lighthead_sn2_toy.py'"
                       r".*lighthead_sn2_star.py"):
        sn2_det.config_file('toy/lighthead_sn2_tyo.py')

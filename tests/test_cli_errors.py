"""The tools print a failed check as one line 'error: ...' and exit 2; --debug or
SN2_DET_DEBUG=1 shows the traceback; defects keep theirs (sn2_det.utils.cli)."""
import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sn2_det.utils.cli import run_tool
from sn2_det.utils.errors import ConfigError
from sn2_det.utils.validation import check_choice

ROOT = Path(__file__).resolve().parents[1]
# needs only numpy and onnxruntime on a board: it cannot import sn2_det
STANDALONE = ('arm_benchmark.py',)


def _raising(err):
    def main(argv):
        raise err
    return main


def test_a_check_of_ours_is_one_line_and_status_2(capsys, monkeypatch):
    monkeypatch.delenv('SN2_DET_DEBUG', raising=False)
    with pytest.raises(SystemExit) as exit_:
        run_tool(_raising(ConfigError('model.x = 1\n  but the dataset has 2')), [])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == 'error: model.x = 1 but the dataset has 2\n'


def test_value_errors_raised_by_sn2_det_are_checks(capsys, monkeypatch):
    monkeypatch.delenv('SN2_DET_DEBUG', raising=False)

    def main(argv):
        check_choice('widen_factor', 0.7, (0.5, 1.0))
    with pytest.raises(SystemExit):
        run_tool(main, [])
    assert capsys.readouterr().err == \
        'error: widen_factor must be one of (0.5, 1.0), got 0.7\n'


def test_a_check_raised_while_mmengine_builds_a_model_is_ours(capsys, monkeypatch):
    monkeypatch.delenv('SN2_DET_DEBUG', raising=False)
    import sn2_det  # noqa: F401
    from sn2_det.utils.config import build_in_mmdet_scope

    def main(argv):
        build_in_mmdet_scope(dict(type='ShuffleNetV2', widen_factor=0.7))
    with pytest.raises(SystemExit):
        run_tool(main, [])
    assert capsys.readouterr().err == \
        'error: widen_factor must be one of (0.5, 1.0, 1.5, 2.0), got 0.7\n'


@pytest.mark.parametrize('err', [RuntimeError('a defect'), KeyError('k')])
def test_unexpected_errors_keep_their_traceback(err, monkeypatch):
    monkeypatch.delenv('SN2_DET_DEBUG', raising=False)
    with pytest.raises(type(err)):
        run_tool(_raising(err), [])


def test_value_errors_from_other_libraries_keep_their_traceback(monkeypatch):
    monkeypatch.delenv('SN2_DET_DEBUG', raising=False)
    with pytest.raises(json.JSONDecodeError):
        run_tool(lambda argv: json.loads('{'), [])


def test_debug_flag_and_variable_show_the_traceback(monkeypatch):
    monkeypatch.delenv('SN2_DET_DEBUG', raising=False)
    seen = []

    def main(argv):
        seen.append(argv)
        raise ConfigError('bad')
    with pytest.raises(ConfigError):
        run_tool(main, ['a', '--debug', 'b'])
    assert seen == [['a', 'b']]
    monkeypatch.setenv('SN2_DET_DEBUG', '1')
    with pytest.raises(ConfigError):
        run_tool(main, [])


@pytest.mark.parametrize('tool', sorted(p.name for p in (ROOT / 'tools').glob('*.py')
                                        if p.name not in STANDALONE))
def test_every_tool_runs_through_run_tool(tool):
    tree = ast.parse((ROOT / 'tools' / tool).read_text())
    block = tree.body[-1]
    assert isinstance(block, ast.If) and ast.unparse(block.test) == "__name__ == '__main__'"
    assert ast.unparse(block.body[-1]) == 'run_tool(main)'


def test_train_tool_prints_a_missing_file_as_one_line(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    env.pop('SN2_DET_DEBUG', None)
    args = [sys.executable, 'tools/train.py', 'configs/toy/lighthead_sn2_toy.py',
            '--data-root', str(tmp_path / 'nowhere')]
    out = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == \
        f'error: --data-root {tmp_path / "nowhere"} is not a directory'
    assert 'Traceback' not in out.stderr


@pytest.mark.parametrize('err', [ValueError('bad'), FileNotFoundError('x.pth'),
                                 TypeError('t')])
def test_only_the_error_family_is_one_line(err, monkeypatch):
    """The kind of error decides, not the file that raised it: a ValueError raised
    next to the tool (here, by this file) keeps its traceback."""
    monkeypatch.delenv('SN2_DET_DEBUG', raising=False)
    with pytest.raises(type(err)):
        run_tool(_raising(err), [])

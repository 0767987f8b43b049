"""tools/infer.py on a generated video, a folder and a camera index: annotated output,
progress bar and frames per second, and a clear error for each kind of bad input."""
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from sn2_det.apis.inference import MediaError, classify_input, infer_media

ROOT = Path(__file__).resolve().parents[1]
TOY = str(ROOT / 'configs/toy/lighthead_sn2_toy.py')


def _write_video(path: Path, frames, codec: str, fps: float = 10.0) -> None:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (w, h))
    assert writer.isOpened(), f'opencv cannot write {codec} here'
    for frame in frames:
        writer.write(frame)
    writer.release()


def _read_video(path: str):
    capture = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return frames, fps


def _val_frames(root: Path, count: int):
    return [cv2.imread(str(root / 'val' / f'{i:05d}.png')) for i in range(count)]


def test_video_through_the_cli(tmp_path, trained_toy_detector):
    root, checkpoint = trained_toy_detector
    video = tmp_path / 'clip.mp4'
    _write_video(video, _val_frames(root, 6), 'mp4v')
    out = tmp_path / 'annotated.mp4'
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    run = subprocess.run([sys.executable, 'tools/infer.py', TOY, checkpoint, str(video),
                          '--out', str(out), '--score-thr', '0.0'], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert '6/6' in run.stderr  # mmengine's progress bar over the frames
    assert '6 frames' in run.stdout and 'frames per second' in run.stdout
    frames, fps = _read_video(str(out))
    assert len(frames) == 6 and frames[0].shape == (256, 256, 3)
    assert fps == pytest.approx(10.0)
    source, _ = _read_video(str(video))
    # boxes are drawn: every frame differs from its input by more than codec noise
    for drawn, plain in zip(frames, source):
        assert (np.abs(drawn.astype(int) - plain.astype(int)).max(axis=2) > 60).sum() > 100


def test_video_to_avi_matches_single_images(tmp_path, trained_toy_detector):
    root, checkpoint = trained_toy_detector
    images = _val_frames(root, 3)
    video = tmp_path / 'clip.avi'
    _write_video(video, images, 'MJPG')
    result = infer_media(TOY, checkpoint, str(video), str(tmp_path / 'out.avi'),
                         score_thr=0.05, max_frames=2, progress=False)
    assert result['kind'] == 'video' and result['frames'] == 2
    assert result['model_fps'] > 0 and result['fps'] > 0
    assert len(_read_video(str(tmp_path / 'out.avi'))[0]) == 2
    decoded = _read_video(str(video))[0][:2]
    per_image = 0
    for i, frame in enumerate(decoded):
        cv2.imwrite(str(tmp_path / f'{i}.png'), frame)
        per_image += infer_media(TOY, checkpoint, str(tmp_path / f'{i}.png'),
                                 str(tmp_path / f'{i}_det.png'), score_thr=0.05,
                                 progress=False)['detections']
    assert result['detections'] == per_image


def test_folder_skips_and_lists_unreadable_images(tmp_path, trained_toy_detector):
    root, checkpoint = trained_toy_detector
    folder = tmp_path / 'pictures'
    folder.mkdir()
    for i, image in enumerate(_val_frames(root, 2)):
        cv2.imwrite(str(folder / f'{i}.jpg'), image)
    (folder / 'broken.png').write_bytes(b'\x89PNG not really')
    (folder / 'notes.txt').write_text('not an image')
    result = infer_media(TOY, checkpoint, str(folder), str(tmp_path / 'drawn'),
                         score_thr=0.0, progress=False)
    assert result['kind'] == 'folder' and result['frames'] == 2
    assert sorted(Path(p).name for p in result['outputs']) == ['0.jpg', '1.jpg']
    assert result['unreadable'] == [str(folder / 'broken.png')]
    assert cv2.imread(str(tmp_path / 'drawn' / '0.jpg')).shape == (256, 256, 3)


def test_bad_inputs_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match='input nowhere.mp4 does not exist'):
        classify_input('nowhere.mp4')
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(MediaError, match='holds no images'):
        classify_input(str(empty))
    (tmp_path / 'data.csv').write_text('1,2')
    with pytest.raises(MediaError, match="unknown file type '.csv'"):
        classify_input(str(tmp_path / 'data.csv'))
    garbage = tmp_path / 'garbage.mp4'
    garbage.write_bytes(os.urandom(2048))
    # each fails before the config or the checkpoint is read
    with pytest.raises(MediaError, match='cannot open video .*garbage.mp4'):
        infer_media(TOY, 'unused.pth', str(garbage), str(tmp_path / 'o.mp4'))
    with pytest.raises(MediaError, match='cannot open camera 97'):
        infer_media(TOY, 'unused.pth', '97', str(tmp_path / 'o.mp4'))
    with pytest.raises(MediaError, match=r'written as \.mp4 or \.avi'):
        infer_media(TOY, 'unused.pth', str(garbage), str(tmp_path / 'o.gif'))
    bad_png = tmp_path / 'bad.png'
    bad_png.write_bytes(b'')
    with pytest.raises(MediaError, match='cannot read image .*bad.png'):
        infer_media(TOY, 'unused.pth', str(bad_png), str(tmp_path / 'o.png'))
    with pytest.raises(MediaError, match='--score-thr must be between 0 and 1'):
        infer_media(TOY, 'unused.pth', str(garbage), str(tmp_path / 'o.mp4'), score_thr=30)
    with pytest.raises(MediaError, match='--max-frames must be at least 1'):
        infer_media(TOY, 'unused.pth', str(garbage), str(tmp_path / 'o.mp4'), max_frames=0)


def test_cli_error_is_one_line(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    run = subprocess.run([sys.executable, 'tools/infer.py', TOY, 'unused.pth', '5'],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2
    assert 'error: cannot open camera 5' in run.stderr and 'Traceback' not in run.stderr


class _FakeCamera:
    """A camera as opencv shows one: no frame count, 30 fps, frames until the user
    presses Ctrl-C (here: after ``stop_after`` frames)."""

    def __init__(self, frame, stop_after=None):
        self.frame, self.stop_after, self.reads, self.released = frame, stop_after, 0, False

    def isOpened(self):
        return True

    def read(self):
        self.reads += 1
        if self.stop_after is not None and self.reads > self.stop_after:
            raise KeyboardInterrupt
        return True, self.frame.copy()

    def get(self, prop):
        return {cv2.CAP_PROP_FPS: 30.0, cv2.CAP_PROP_FRAME_COUNT: -1.0}.get(prop, 0.0)

    def release(self):
        self.released = True


def test_camera_records_until_ctrl_c_or_max_frames(tmp_path, trained_toy_detector,
                                                   monkeypatch, capsys):
    import sn2_det.apis.inference as inference
    root, checkpoint = trained_toy_detector
    frame = _val_frames(root, 1)[0]
    opened = []
    for stop_after, max_frames, out in ((3, None, 'ctrl_c.avi'), (None, 4, 'max.mp4')):
        camera = _FakeCamera(frame, stop_after)
        monkeypatch.setattr(inference.cv2, 'VideoCapture',
                            lambda source, camera=camera: opened.append(source) or camera)
        result = infer_media(TOY, checkpoint, '0', str(tmp_path / out), score_thr=0.0,
                             max_frames=max_frames)
        monkeypatch.undo()
        err = capsys.readouterr().err
        assert camera.released and result['kind'] == 'camera'
        frames, fps = _read_video(str(tmp_path / out))
        assert fps == pytest.approx(30.0)
        if max_frames is None:  # an endless stream: a frame counter; Ctrl-C keeps the video
            assert result['frames'] == 3 and len(frames) == 3 and 'frames: 3,' in err
        else:
            assert result['frames'] == 4 and len(frames) == 4 and '4/4' in err
    assert opened == [0, 0]

"""PS-RoI Align / pooling against plain-loop references written from the definition."""
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.autograd import gradcheck

from sn2_det.ops import ps_roi_align, ps_roi_pool

ROOT = Path(__file__).resolve().parents[1]


def bilinear(plane, y, x):
    h, w = plane.shape
    if not (-1.0 <= y <= h and -1.0 <= x <= w):
        return 0.0
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= h - 1:
        y0 = y1 = h - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= w - 1:
        x0 = x1 = w - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    return ((1 - ly) * (1 - lx) * plane[y0, x0] + (1 - ly) * lx * plane[y0, x1]
            + ly * (1 - lx) * plane[y1, x0] + ly * lx * plane[y1, x1])


def ps_roi_align_loop(inp, rois, k, scale, ratio, reduction='avg', aligned=True):
    """``reduction='max'``, ``aligned=False``: the Light-Head authors' kernel
    (lib_psalign_pooling): a bin's largest sample, corners not shifted."""
    inp, rois = inp.double(), rois.double()
    c_out = inp.shape[1] // (k * k)
    out = torch.zeros(len(rois), c_out, k, k, dtype=torch.float64)
    for r, (b, x1, y1, x2, y2) in enumerate(rois.tolist()):
        x1, y1, x2, y2 = (v * scale - (0.5 if aligned else 0.0) for v in (x1, y1, x2, y2))
        bh, bw = (y2 - y1) / k, (x2 - x1) / k
        gh = ratio if ratio > 0 else max(math.ceil((y2 - y1) / k), 1)
        gw = ratio if ratio > 0 else max(math.ceil((x2 - x1) / k), 1)
        for c in range(c_out):
            for i in range(k):
                for j in range(k):
                    plane = inp[int(b), (c * k + i) * k + j]
                    samples = [bilinear(plane, y1 + i * bh + (iy + 0.5) * bh / gh,
                                        x1 + j * bw + (ix + 0.5) * bw / gw)
                               for iy in range(gh) for ix in range(gw)]
                    if reduction == 'max':
                        out[r, c, i, j] = max(samples, key=float)
                    else:
                        out[r, c, i, j] = sum(samples) / (gh * gw)
    return out


def ps_roi_pool_loop(inp, rois, k, scale):
    inp = inp.double()
    c_out = inp.shape[1] // (k * k)
    h, w = inp.shape[2:]
    out = torch.zeros(len(rois), c_out, k, k, dtype=torch.float64)
    for r, (b, x1, y1, x2, y2) in enumerate(rois.double().tolist()):
        x1, y1, x2, y2 = (round(v * scale) for v in (x1, y1, x2, y2))
        rh, rw = max(y2 - y1, 1), max(x2 - x1, 1)
        for c in range(c_out):
            for i in range(k):
                for j in range(k):
                    hs = min(max(math.floor(i * rh / k) + y1, 0), h)
                    he = min(max(math.ceil((i + 1) * rh / k) + y1, 0), h)
                    ws = min(max(math.floor(j * rw / k) + x1, 0), w)
                    we = min(max(math.ceil((j + 1) * rw / k) + x1, 0), w)
                    if he <= hs or we <= ws:
                        continue
                    region = inp[int(b), (c * k + i) * k + j, hs:he, ws:we]
                    out[r, c, i, j] = region.mean()
    return out


def make_rois():
    return torch.tensor([
        [0, 4.0, 6.0, 40.0, 30.0],      # ordinary
        [1, 10.3, 2.7, 19.9, 60.1],     # tall, in the second image
        [0, -20.0, -8.0, 12.0, 9.0],    # partly outside (top left)
        [1, 50.0, 40.0, 90.0, 80.0],    # partly outside (bottom right)
        [0, 100.0, 100.0, 140.0, 130.0],  # wholly outside
        [1, 30.0, 20.0, 31.0, 21.5],    # smaller than a bin
        [0, 0.0, 0.0, 63.0, 47.0],      # the whole image
    ])


@pytest.mark.parametrize('impl', ['torch', 'gather'])
@pytest.mark.parametrize('ratio', [2, 0, 1])
def test_ps_roi_align_matches_loop(ratio, impl):
    torch.manual_seed(0)
    k, scale = 3, 0.25
    inp = torch.rand(2, 4 * k * k, 12, 16)
    rois = make_rois()
    got = ps_roi_align(inp, rois, k, scale, ratio, impl=impl)
    ref = ps_roi_align_loop(inp, rois, k, scale, ratio)
    assert got.shape == (7, 4, k, k) and got.dtype == torch.float32
    assert torch.allclose(got.double(), ref, atol=1e-5)
    assert got[4].abs().max() == 0  # wholly outside


@pytest.mark.parametrize('impl', ['torch', 'gather'])
@pytest.mark.parametrize('ratio', [2, 1])
@pytest.mark.parametrize('reduction,aligned', [('max', False), ('max', True),
                                               ('avg', False)])
def test_ps_roi_align_max_and_unaligned_match_loop(reduction, aligned, ratio, impl):
    torch.manual_seed(0)
    k, scale = 3, 0.25
    inp = torch.rand(2, 4 * k * k, 12, 16) - 0.5  # negative values: max is not abs
    rois = make_rois()
    rois[:, 1:] += 0.01  # unshifted, a sample would fall on the border at -1 exactly
    got = ps_roi_align(inp, rois, k, scale, ratio, impl=impl, reduction=reduction,
                       aligned=aligned)
    ref = ps_roi_align_loop(inp, rois, k, scale, ratio, reduction, aligned)
    assert torch.allclose(got.double(), ref, atol=1e-5)
    avg = ps_roi_align(inp, rois, k, scale, ratio, impl=impl, aligned=aligned)
    if reduction == 'max' and ratio > 1:
        assert (got >= avg - 1e-6).all() and (got > avg + 1e-3).any()


def test_max_sends_the_gradient_to_the_arg_max_sample_only():
    """Gradients of the op equal those of the loop (autograd through Python's max:
    only the chosen sample's four bilinear taps)."""
    torch.manual_seed(3)
    k, scale = 2, 0.5
    rois = make_rois()[[0, 1, 3]]
    inp = torch.rand(2, 2 * k * k, 12, 16, dtype=torch.float64, requires_grad=True)
    grad_out = torch.rand(3, 2, k, k, dtype=torch.float64)
    (ps_roi_align(inp, rois, k, scale, 2, reduction='max', aligned=False)
     * grad_out).sum().backward()
    got = inp.grad.clone()
    inp.grad = None
    (ps_roi_align_loop(inp, rois, k, scale, 2, 'max', False) * grad_out).sum().backward()
    assert torch.allclose(got, inp.grad, atol=1e-10)
    # a RoI inside the map: each bin passes its whole gradient to one sample's taps
    inp.grad = None
    (ps_roi_align(inp, rois[:1], k, scale, 2, reduction='max', aligned=False)
     * grad_out[:1]).sum().backward()
    assert inp.grad.sum().item() == pytest.approx(grad_out[0].sum().item(), rel=1e-9)
    assert (inp.grad != 0).sum() <= k * k * 2 * 4  # 4 taps of one sample per bin


def test_gradcheck_max_and_unaligned():
    """Max is differentiable away from ties (random input has none)."""
    torch.manual_seed(0)
    inp = torch.rand(2, 2 * 4, 6, 7, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 1.3, 2.2, 20.1, 15.7], [1, -3.0, 4.0, 9.5, 30.0],
                         [0, 5.0, 5.0, 5.5, 6.0]], dtype=torch.float64)
    for reduction, aligned, impl in (('max', False, 'torch'), ('max', False, 'gather'),
                                     ('avg', False, 'torch')):
        assert gradcheck(lambda x: ps_roi_align(x, rois, 2, 0.25, 2, impl=impl,
                                                reduction=reduction, aligned=aligned),
                         (inp,), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize('reduction,aligned,impl', [('avg', True, 'torch'),
                                                    ('max', False, None)])
def test_onnx_export_matches_loop(tmp_path, reduction, aligned, impl):
    """The exported graph (average: index_select + sum, against the fused embedding_bag
    path; max: the authors' kernel) against the loop reference, with RoIs partly and
    wholly outside and a different RoI count than the traced one."""
    ort = pytest.importorskip('onnxruntime')
    torch.manual_seed(0)
    k, scale = 3, 0.25
    inp = torch.rand(2, 4 * k * k, 12, 16)
    rois = make_rois()
    options = dict(reduction=reduction, aligned=aligned, **({'impl': impl} if impl else {}))

    class Op(torch.nn.Module):
        def forward(self, x, r):
            return ps_roi_align(x, r, k, scale, 2, **options)

    path = str(tmp_path / 'ps_roi_align.onnx')
    torch.onnx.export(Op(), (inp, rois), path, input_names=['x', 'rois'],
                      dynamic_axes={'rois': {0: 'k'}}, opset_version=17, dynamo=False)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    for r in (rois, rois[[3, 0, 6]]):
        (got,) = session.run(None, {'x': inp.numpy(), 'rois': r.numpy()})
        ref = ps_roi_align_loop(inp, r, k, scale, 2, reduction, aligned)
        assert torch.allclose(torch.from_numpy(got).double(), ref, atol=1e-5)
        assert torch.allclose(Op()(inp, r).double(), ref, atol=1e-5)


@pytest.mark.parametrize('kwargs,message', [
    (dict(reduction='min'), r"reduction must be one of \('avg', 'max'\), got 'min'"),
    (dict(reduction='max', sampling_ratio=0), "reduction='max' needs a fixed "
                                              "sampling_ratio >= 1"),
    (dict(aligned=1), 'aligned must be True or False'),
    (dict(reduction='max', sampling_ratio=2, impl='torchvision'),
     "impl='torchvision' computes reduction='avg' with aligned=True only"),
])
def test_bad_reduction_arguments(kwargs, message):
    args = dict(dict(sampling_ratio=2), **kwargs)
    with pytest.raises(ValueError, match=message):
        ps_roi_align(torch.rand(1, 4, 4, 4), make_rois()[:1], 2, 1.0, **args)


def test_ps_roi_align_rectangular_bins():
    torch.manual_seed(1)
    inp = torch.rand(2, 2 * 2 * 3, 10, 10)
    got = ps_roi_align(inp, make_rois()[:2], (2, 3), 0.125, 2, impl='torch')
    assert got.shape == (2, 2, 2, 3)


def test_ps_roi_pool_matches_loop():
    torch.manual_seed(0)
    k, scale = 3, 0.25
    inp = torch.rand(2, 4 * k * k, 12, 16)
    got = ps_roi_pool(inp, make_rois(), k, scale)
    ref = ps_roi_pool_loop(inp, make_rois(), k, scale)
    assert torch.allclose(got.double(), ref, atol=1e-5)


def test_gradcheck_align():
    torch.manual_seed(0)
    inp = torch.rand(2, 2 * 4, 6, 7, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 1.3, 2.2, 20.1, 15.7], [1, -3.0, 4.0, 9.5, 30.0],
                         [0, 5.0, 5.0, 5.5, 6.0]], dtype=torch.float64)
    for ratio, impl in ((2, 'torch'), (0, 'torch'), (2, 'gather')):
        assert gradcheck(lambda x: ps_roi_align(x, rois, 2, 0.25, ratio, impl=impl),
                         (inp,), eps=1e-6, atol=1e-6)


def test_gradcheck_pool():
    torch.manual_seed(0)
    inp = torch.rand(2, 2 * 4, 6, 7, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 1.3, 2.2, 20.1, 15.7], [1, -3.0, 4.0, 9.5, 30.0]],
                        dtype=torch.float64)
    assert gradcheck(lambda x: ps_roi_pool(x, rois, 2, 0.25), (inp,), eps=1e-6, atol=1e-6)


def test_zero_rois_and_gradient_flow():
    inp = torch.rand(1, 10 * 49, 8, 8, requires_grad=True)
    for op in (lambda r: ps_roi_align(inp, r, 7, 0.5, 2, impl='torch'),
               lambda r: ps_roi_align(inp, r, 7, 0.5, 0, impl='torch'),
               lambda r: ps_roi_pool(inp, r, 7, 0.5)):
        out = op(torch.zeros(0, 5))
        assert out.shape == (0, 10, 7, 7)
        out.sum().backward()


def test_non_contiguous_input():
    torch.manual_seed(0)
    base = torch.rand(2, 16, 18, 4 * 9).transpose(1, 3)  # (2, 36, 18, 16), strided
    assert not base.is_contiguous()
    rois = make_rois()
    a = ps_roi_align(base, rois, 3, 0.25, 2, impl='torch')
    b = ps_roi_align(base.contiguous(), rois, 3, 0.25, 2, impl='torch')
    assert torch.equal(a, b)
    assert torch.allclose(ps_roi_pool(base, rois, 3, 0.25),
                          ps_roi_pool(base.contiguous(), rois, 3, 0.25))


@pytest.mark.parametrize('shape,rois,message', [
    ((1, 10, 8, 8), torch.zeros(1, 5), 'divisible'),
    ((1, 9, 8, 8), torch.zeros(1, 4), r'\(K, 5\)'),
    ((9, 8, 8), torch.zeros(1, 5), r'\(N, C\*kh\*kw, H, W\)'),
])
def test_bad_shapes(shape, rois, message):
    with pytest.raises(ValueError, match=message):
        ps_roi_align(torch.rand(shape), rois, 3)
    with pytest.raises(ValueError, match=message):
        ps_roi_pool(torch.rand(shape), rois, 3)


def test_bad_output_size_and_impl():
    with pytest.raises(ValueError, match='output_size'):
        ps_roi_align(torch.rand(1, 9, 4, 4), torch.zeros(1, 5), 0)
    with pytest.raises(ValueError, match="'auto', 'torch', 'gather', 'torchvision'"):
        ps_roi_align(torch.rand(1, 9, 4, 4), torch.zeros(1, 5), 3, impl='cuda')


def test_torchvision_agrees_where_it_imports():
    from sn2_det.ops.ps_roi_align import _torchvision
    if _torchvision() is None:
        pytest.skip('torchvision does not import with this torch (CPU build)')
    torch.manual_seed(0)
    devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
    for device in devices:
        inp = torch.rand(2, 4 * 9, 12, 16, device=device)
        rois = make_rois().to(device)
        for ratio in (2, 0):
            ours = ps_roi_align(inp, rois, 3, 0.25, ratio, impl='torch')
            theirs = ps_roi_align(inp, rois, 3, 0.25, ratio, impl='torchvision')
            assert torch.allclose(ours, theirs, atol=1e-5)


# The device tests run on CPU everywhere and on CUDA where a device is present
# (tools/gpu_check.sh runs them on a GPU machine: pytest -k cuda).
DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason='no CUDA device: torch.cuda.is_available() '
                                          'is False'))]
TOLERANCE = {torch.float32: 1e-5, torch.float16: 1e-2}  # fp16: 11-bit significand


def _device_case(device, dtype, seed=0):
    """Input (values in [-0.5, 0.5), rounded to ``dtype``) and RoIs on ``device``,
    with the float64 CPU copy of the same rounded input for the references."""
    torch.manual_seed(seed)
    k = 3
    ref_in = (torch.rand(2, 4 * k * k, 12, 16) - 0.5).to(dtype).double()
    rois = make_rois()
    rois[:, 1:] += 0.01  # unshifted, a sample would fall on the border at -1 exactly
    grad_out = torch.rand(len(rois), 4, k, k).to(dtype).double()
    return k, ref_in, rois, grad_out


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('dtype', [torch.float32, torch.float16])
@pytest.mark.parametrize('reduction,aligned', [('avg', True), ('max', False)])
def test_torch_path_on_device_matches_loop_forward_and_backward(device, dtype,
                                                                reduction, aligned):
    """The fused PyTorch path on ``device`` in ``dtype`` against the float64 loop on
    CPU, values and input gradients. fp16 rounds samples that differ by less than
    its precision to one value, and either may then be a bin's maximum: with 'max'
    a few bins may send their gradient to another sample (at most 5% of entries)."""
    k, ref_in, rois, grad_out = _device_case(device, dtype)
    ref_in.requires_grad_()
    ref = ps_roi_align_loop(ref_in, rois, k, 0.25, 2, reduction, aligned)
    (ref * grad_out).sum().backward()
    x = ref_in.detach().to(device, dtype).requires_grad_()
    out = ps_roi_align(x, rois.to(device), k, 0.25, 2, impl='torch', reduction=reduction,
                       aligned=aligned)
    assert out.dtype == dtype and out.device.type == device
    (out * grad_out.to(device, dtype)).sum().backward()
    tol = TOLERANCE[dtype]
    assert torch.allclose(out.double().cpu(), ref.detach(), atol=tol)
    grad, ref_grad = x.grad.double().cpu(), ref_in.grad
    off = (grad - ref_grad).abs() > tol
    if reduction == 'max' and dtype == torch.float16:
        assert off.sum() <= 0.05 * (ref_grad != 0).sum()
        assert grad.sum().item() == pytest.approx(ref_grad.sum().item(), rel=1e-2)
    else:
        assert not off.any(), (grad - ref_grad).abs().max()


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('dtype', [torch.float32, torch.float16])
def test_torch_path_matches_torchvision_kernel_forward_and_backward(device, dtype):
    """The PyTorch path against torchvision's kernel (CPU and CUDA, where torchvision
    imports): values and input gradients, adaptive and fixed sampling."""
    from sn2_det.ops.ps_roi_align import _torchvision
    if _torchvision() is None:
        pytest.skip('torchvision does not import with this torch (CPU build)')
    k, ref_in, rois, grad_out = _device_case(device, dtype)
    for ratio in (2, 0):
        grads = []
        for impl in ('torch', 'torchvision'):
            x = ref_in.detach().to(device, dtype).requires_grad_()
            out = ps_roi_align(x, rois.to(device), k, 0.25, ratio, impl=impl)
            (out * grad_out.to(device, dtype)).sum().backward()
            grads.append((out.double().cpu(), x.grad.double().cpu()))
        (ours, our_grad), (theirs, their_grad) = grads
        # torchvision may place fp16 samples in half precision (0.02 px at x = 35)
        tol = 5e-2 if dtype == torch.float16 else TOLERANCE[dtype]
        assert torch.allclose(ours, theirs, atol=tol)
        assert torch.allclose(our_grad, their_grad, atol=tol)


def test_op_benchmark_times_every_implementation_on_the_same_output():
    from sn2_det.analysis.op_benchmark import compare_ps_roi_align, random_rois
    rois = random_rois(2, (64, 96), 50, torch.Generator().manual_seed(0))
    assert rois.shape == (100, 5) and set(rois[:, 0].tolist()) == {0.0, 1.0}
    assert (rois[:, 1:3] >= 0).all() and (rois[:, 3] <= 96).all() and (rois[:, 4] <= 64).all()
    assert ((rois[:, 3:] - rois[:, 1:3]) >= 16).all()
    rows = compare_ps_roi_align(batch=1, shape=(64, 96), rois_per_image=5, rounds=2,
                                warmup=0)
    assert [r['impl'] for r in rows][-2:] == ['torch', 'gather']
    assert rows[0]['ratio_to_first'] == 1.0 and all(r['runs'] == 2 for r in rows)
    assert max(r['max_abs_diff'] for r in rows) < 1e-5
    out = subprocess.run(
        [sys.executable, 'tools/benchmark.py', '--ps-roi-align', '--rois', '3', '--batch',
         '1', '--shape', '64', '96', '--runs', '1', '--warmup', '0'],
        cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert 'batch 1 x 3 RoIs' in out and 'gather' in out

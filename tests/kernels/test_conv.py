import zlib

import numba
import numpy as np
import pytest

from edgecl.kernels import binary_conv2d, binary_conv2d_reference, pack_signs, unpack_bits

CASES = [
    # (N, H, W, C, O, kh, kw)
    (1, 5, 5, 1, 3, 3, 3),
    (2, 6, 7, 63, 5, 3, 3),
    (1, 5, 6, 64, 4, 1, 1),
    (2, 4, 5, 65, 9, 2, 2),
    (1, 7, 5, 127, 6, 5, 5),
    (1, 4, 4, 1000, 3, 3, 3),
    (3, 6, 6, 3, 8, 4, 4),
    (1, 5, 7, 5, 2, 3, 2),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", ["same", "valid", "tf", "skew"])
@pytest.mark.parametrize("pad_value", [1, 0])
def test_matches_reference(words, pads_of, strategy, case, stride, padding, pad_value):
    N, H, W, C, O, kh, kw = case
    rng = np.random.default_rng(zlib.crc32(repr((case, stride, padding, pad_value)).encode()))
    padding = pads_of(padding, kh, kw)
    x = words(rng, (N, H, W), C)
    w = words(rng, (O, kh, kw), C)
    got = binary_conv2d(x, w, C, stride=stride, padding=padding, pad_value=pad_value)
    want = binary_conv2d_reference(x, w, C, stride=stride, padding=padding, pad_value=pad_value)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want)


def _correlate_signs(xs, ws, stride, pad, pad_value):
    """Independent ±1 cross-correlation by an explicit loop over output pixels."""
    N, H, W, C = xs.shape
    O, kh, kw, _ = ws.shape
    xp = np.full((N, H + 2 * pad[0], W + 2 * pad[1], C), pad_value, np.int64)
    xp[:, pad[0] : pad[0] + H, pad[1] : pad[1] + W] = xs
    ho = (H + 2 * pad[0] - kh) // stride + 1
    wo = (W + 2 * pad[1] - kw) // stride + 1
    out = np.zeros((N, ho, wo, O), np.int64)
    for oy in range(ho):
        for ox in range(wo):
            patch = xp[:, oy * stride : oy * stride + kh, ox * stride : ox * stride + kw]
            out[:, oy, ox] = np.einsum("nijc,oijc->no", patch, ws)
    return out


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("pad_value", [1, 0])
def test_against_independent_signs(k, stride, pad_value):
    rng = np.random.default_rng(10 * k + stride)
    xf = rng.standard_normal((2, 7, 6, 37))
    wf = rng.standard_normal((5, k, k, 37))
    xs = np.where(xf >= 0, 1, -1)
    ws = np.where(wf >= 0, 1, -1)
    want = _correlate_signs(xs, ws, stride, (k // 2, k // 2), pad_value)
    got = binary_conv2d(pack_signs(xf), pack_signs(wf), 37, stride=stride, pad_value=pad_value)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize("stride", [1, 2])
def test_against_torch_conv2d(words, k, stride):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(k * 7 + stride)
    C, O = 70, 6
    x = words(rng, (2, 9, 8), C)
    w = words(rng, (O, k, k), C)
    xs = unpack_bits(x, C).astype(np.float32) * 2 - 1
    ws = unpack_bits(w, C).astype(np.float32) * 2 - 1
    ref = torch.nn.functional.conv2d(
        torch.from_numpy(xs).permute(0, 3, 1, 2),
        torch.from_numpy(ws).permute(0, 3, 1, 2),
        stride=stride,
        padding=k // 2,
    )
    want = ref.permute(0, 2, 3, 1).round().to(torch.int32).numpy()
    got = binary_conv2d(x, w, C, stride=stride, padding="same", pad_value=0)
    np.testing.assert_array_equal(got, want)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
@pytest.mark.parametrize("pad_value", [1, 0])
def test_threads_equal_single_thread(words, pad_value):
    rng = np.random.default_rng(3)
    x = words(rng, (2, 6, 5), 65)
    w = words(rng, (90, 3, 3), 65)
    one = binary_conv2d(x, w, 65, pad_value=pad_value)
    two = binary_conv2d(x, w, 65, pad_value=pad_value, threads=2)
    np.testing.assert_array_equal(one, two)


def test_inputs_not_mutated_and_non_contiguous_accepted(words):
    rng = np.random.default_rng(4)
    x = words(rng, (2, 8, 6), 65)[:, ::2]
    w = words(rng, (4, 3, 3), 65)
    xb, wb = x.copy(), w.copy()
    got = binary_conv2d(x, w, 65, pad_value=0)
    np.testing.assert_array_equal(got, binary_conv2d_reference(x, w, 65, pad_value=0))
    np.testing.assert_array_equal(x, xb)
    np.testing.assert_array_equal(w, wb)


def test_bad_input(words):
    rng = np.random.default_rng(5)
    x = words(rng, (1, 5, 5), 65)
    w = words(rng, (3, 3, 3), 65)
    with pytest.raises(TypeError, match="uint64"):
        binary_conv2d(x.astype(np.int64), w, 65)
    with pytest.raises(ValueError, match="axes"):
        binary_conv2d(x[0], w, 65)
    with pytest.raises(ValueError, match="axes"):
        binary_conv2d(x, w[0], 65)
    with pytest.raises(ValueError, match="expected 1 words .* x"):
        binary_conv2d(x, w, 64)
    with pytest.raises(ValueError, match="expected 2 words .* w"):
        binary_conv2d(x, w[..., :1].copy(), 65)
    with pytest.raises(ValueError, match="padding"):
        binary_conv2d(x, w, 65, padding="full")
    with pytest.raises(ValueError, match="pad_value"):
        binary_conv2d(x, w, 65, pad_value=-1)
    with pytest.raises(ValueError, match="stride"):
        binary_conv2d(x, w, 65, stride=0)
    with pytest.raises(ValueError, match="at least"):
        binary_conv2d(x[:, :2, :2].copy(), w, 65, padding="valid")

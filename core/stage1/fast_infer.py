"""Free-running stage-1 decoding in NumPy: the CPU inference kernel of :func:`.infer.generate`.

A decoding step is tiny (one frame, 37 points, width 64) and strictly sequential, so on a CPU
its cost is the per-operation overhead, not arithmetic: PyTorch spends several microseconds
dispatching each of the ~150 module calls and operators of a step, NumPy about one. This module
runs the same network (weights read from the :class:`~.model.Stage1Model`, nothing copied into
a second definition of the layers) with the KV cache as preallocated arrays, about three times
faster per step. The audio side (encoder and each layer's fusion of the aligned audio feature)
is computed once per clip by the model itself; only the autoregressive loop is here. A test
holds it equal to the PyTorch cached loop and to the uncached reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import erf
from threadpoolctl import threadpool_limits

from .decoder import Decoder, DecoderLayer
from .encoder import NUM_POINTS, EncoderLayer, LandmarkEncoder
from .model import Stage1Model

_EPS = 1e-5  # nn.LayerNorm's default, which every norm of the model uses


def _np(t: torch.Tensor) -> np.ndarray:
    """A float32 copy of ``t`` (never a view of the model's own memory: some are scaled here)."""
    return np.array(t.detach().cpu().numpy(), dtype=np.float32, copy=True)


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + erf(x * np.float32(1.0 / math.sqrt(2.0))))


def _softmax(s: np.ndarray) -> np.ndarray:
    e = np.exp(s - np.maximum.reduce(s, -1, keepdims=True))
    return e / np.add.reduce(e, -1, keepdims=True)


@dataclass
class _Linear:
    """``x @ wt + b`` for one sequence's rows [t, in]."""

    wt: np.ndarray  # [in, out]
    b: np.ndarray  # [out]

    @classmethod
    def of(cls, lin: torch.nn.Module, norm: torch.nn.Module | None = None) -> _Linear:
        """``lin``'s weights; with ``norm`` (a LayerNorm right before it) its scale and shift are
        folded in, so the linear takes the normalised but unscaled rows."""
        assert isinstance(lin, torch.nn.Linear) and lin.bias is not None
        wt, b = _np(lin.weight).T.copy(), _np(lin.bias)
        if norm is not None:
            assert isinstance(norm, torch.nn.LayerNorm) and norm.eps == _EPS
            w_n, b_n = _np(norm.weight), _np(norm.bias)
            b = b + b_n @ wt
            wt = w_n[:, None] * wt
        return cls(wt, b)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x @ self.wt + self.b


def _standardise(x: np.ndarray) -> np.ndarray:
    """LayerNorm without its scale and shift (folded into the next linear), rows [t, dim]."""
    inv = np.float32(1.0 / x.shape[-1])  # np.mean's Python wrapper costs more than the sums
    d = x - np.add.reduce(x, -1, keepdims=True) * inv
    return d / np.sqrt(np.add.reduce(d * d, -1, keepdims=True) * inv + _EPS)


@dataclass
class _Norm:
    w: np.ndarray
    b: np.ndarray

    @classmethod
    def of(cls, norm: torch.nn.Module) -> _Norm:
        assert isinstance(norm, torch.nn.LayerNorm) and norm.eps == _EPS
        return cls(_np(norm.weight), _np(norm.bias))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return _standardise(x) * self.w + self.b


def _scaled_qkv(lin: torch.nn.Module, heads: int, norm: torch.nn.Module | None = None) -> _Linear:
    """The fused query/key/value projection with the attention's 1/sqrt(head width) folded into
    the query part."""
    qkv = _Linear.of(lin, norm)
    dim = qkv.wt.shape[1] // 3
    scale = np.float32(1.0 / math.sqrt(dim // heads))
    qkv.wt[:, :dim] *= scale
    qkv.b[:dim] *= scale
    return qkv


class _EncoderLayer:
    """:class:`~.encoder.EncoderLayer` (pre-norm, full attention over the 38 tokens [38, dim])."""

    def __init__(self, layer: EncoderLayer) -> None:
        self.heads = layer.heads
        self.qkv = _scaled_qkv(layer.qkv, layer.heads, layer.norm1)
        self.out = _Linear.of(layer.out)
        self.ffn1, self.ffn2 = _Linear.of(layer.ffn[0], layer.norm2), _Linear.of(layer.ffn[2])

    def __call__(self, x: np.ndarray, first_only: bool) -> np.ndarray:
        t, dim = x.shape
        qkv = self.qkv(_standardise(x)).reshape(t, 3, self.heads, -1).transpose(1, 2, 0, 3)
        q, k, v = qkv[0], qkv[1], qkv[2]  # [H, t, hd]
        if first_only:  # the classification token alone: the next layer reads only it
            q, x = q[:, :1], x[:1]
        y = (_softmax(q @ k.transpose(0, 2, 1)) @ v).transpose(1, 0, 2).reshape(len(x), dim)
        x = x + self.out(y)
        return x + self.ffn2(_gelu(self.ffn1(_standardise(x))))


class _LandmarkEncoder:
    """:class:`~.encoder.LandmarkEncoder`: one frame's [37, 3] displacements / std → [dim]."""

    def __init__(self, enc: LandmarkEncoder) -> None:
        w = _np(enc.conv.weight)  # [dim, 3 in, 3 taps]
        self.conv_w = w.transpose(2, 1, 0).reshape(-1, w.shape[0]).copy()  # [(tap, in), dim]
        assert enc.conv.bias is not None
        pos = _np(enc.pos)[0]  # [38, dim]
        self.token_bias = _np(enc.conv.bias) + pos[1:]  # [37, dim]
        self.cls = _np(enc.cls)[0, 0] + pos[0]  # [dim]
        self.layers = [
            _EncoderLayer(layer) for layer in enc.layers if isinstance(layer, EncoderLayer)
        ]
        self.norm = _Norm.of(enc.norm)
        self.pad = np.zeros((NUM_POINTS + 2, 3), np.float32)  # the convolution's zero padding
        self.x = np.zeros((NUM_POINTS + 1, w.shape[0]), np.float32)  # the 38 tokens

    def __call__(self, lm: np.ndarray) -> np.ndarray:
        pad = self.pad
        pad[1:-1] = lm
        cols = np.concatenate((pad[:-2], pad[1:-1], pad[2:]), axis=1)  # [37, (tap, in)]
        x = self.x
        x[0] = self.cls
        np.matmul(cols, self.conv_w, out=x[1:])
        x[1:] += self.token_bias
        for i, layer in enumerate(self.layers):
            x = layer(x, first_only=i == len(self.layers) - 1)
        return self.norm(x[0])


class _DecoderLayer:
    """One :class:`~.decoder.DecoderLayer` step, its keys and values in arrays [H, T, hd]."""

    def __init__(self, layer: DecoderLayer, frames: int) -> None:
        sa = layer.self_attn
        self.heads, self.context = sa.heads, sa.context
        self.qkv, self.out = _scaled_qkv(sa.qkv, sa.heads), _Linear.of(sa.out)
        self.table_rev = _np(sa.table_rev)  # [H, 1, context]: bias of the key d frames back
        self.norm1, self.norm2, self.norm3 = (
            _Norm.of(layer.norm1),
            _Norm.of(layer.norm2),
            _Norm.of(layer.norm3),
        )
        self.ffn1, self.ffn2 = _Linear.of(layer.ffn[0]), _Linear.of(layer.ffn[3])
        dim = self.qkv.wt.shape[0]
        shape = (self.heads, frames, dim // self.heads)
        self.k, self.v = np.zeros(shape, np.float32), np.zeros(shape, np.float32)

    def __call__(self, x: np.ndarray, fused: np.ndarray, i: int) -> np.ndarray:
        """Frame ``i``'s features [dim] after this layer; ``fused`` [dim]: the fusion's output."""
        q, k, v = self.qkv(x).reshape(3, self.heads, 1, -1)  # [H, 1, hd] each
        self.k[:, i : i + 1], self.v[:, i : i + 1] = k, v
        lo = max(0, i + 1 - self.context)  # keys the self-attention still sees
        keys, vals = self.k[:, lo : i + 1], self.v[:, lo : i + 1]  # [H, L, hd]
        bias = self.table_rev[:, :, self.context - (i + 1 - lo) :]  # [H, 1, L]
        y = (_softmax(q @ keys.transpose(0, 2, 1) + bias) @ vals).reshape(-1)  # [dim]
        x = self.norm1(x + self.out(y))
        x = self.norm2(x + fused)
        return self.norm3(x + self.ffn2(_gelu(self.ffn1(x))))


def supports(model: Stage1Model) -> bool:
    """Whether :func:`generate_numpy` can run ``model`` (its parts are the ones written here)."""
    dec = model.decoder
    return isinstance(dec, Decoder) and all(
        isinstance(layer, DecoderLayer) and isinstance(layer.ffn[1], torch.nn.GELU)
        for layer in dec.layers
    )


@torch.inference_mode()
def generate_numpy(model: Stage1Model, feats: torch.Tensor) -> torch.Tensor:
    """Displacements [B, T, 37, 3] for front-end rows ``feats`` [B, T, in_dim] (CPU, eval mode),
    the same as :func:`.infer.generate`'s PyTorch loop up to float rounding."""
    model.eval()
    b, t = feats.shape[:2]
    dim = model.config.feature_dim
    states = model.decoder.prepare(model.encode_audio(feats))
    # Each layer's fusion term for every frame. The linear fusion is the aligned audio feature;
    # the biased cross-attention's alignment mask lets frame i see audio frame i only, so its
    # output does not depend on the query either: both are computed here for all frames at once.
    zeros = feats.new_zeros(b, t, dim)
    dec_layers = model.decoder.decoder_layers()
    fused = [_np(layer.fusion(zeros, s, 0)) for layer, s in zip(dec_layers, states)]
    pe = _np(model.decoder.ppe.pe)  # [period, dim]
    period = model.decoder.ppe.period
    head = _Linear.of(model.head)
    disp_std = _np(model.disp_std)
    out = np.zeros((b, t, NUM_POINTS, 3), np.float32)
    # The loop's products are far too small to share between BLAS threads: a second thread
    # only spins (stage 1 on German_20s: 32.8× real time in CPU time on one, 24.0× on two).
    with threadpool_limits(limits=1, user_api="blas"):
        for n in range(b):  # one sequence at a time: 2-D products are the cheapest
            lm_enc = _LandmarkEncoder(model.lm_encoder)
            layers = [_DecoderLayer(layer, t) for layer in dec_layers]
            prev = np.zeros((NUM_POINTS, 3), np.float32)  # the start: the mean landmarks
            for i in range(t):
                x = lm_enc(prev / disp_std) + pe[i % period]  # [dim]
                for layer, f in zip(layers, fused):
                    x = layer(x, f[n, i], i)
                prev = head(x).reshape(NUM_POINTS, 3) * disp_std
                out[n, i] = prev
    return torch.from_numpy(out).to(feats.dtype)

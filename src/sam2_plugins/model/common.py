"""Small building blocks shared by several SAM 2 parts: MLP, 2-D layer norm, positional codes."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from ..hardware import cpu_has_amx

# Fused attention kernels used on GPUs. Not cuDNN's: it builds an execution plan for each new
# sequence length, and the memory bank and pointer list grow every frame of a propagation (H200,
# torch 2.11, tiny, frames 9-11: ~106 ms of host time per frame in it, against ~28 ms of GPU work).
_GPU_ATTENTION = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


class MLP(nn.Module):
    """A stack of linear layers (checkpoint name: ``layers.N``) with an activation between."""

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        output_dim: int,
        num_layers: int,
        activation: type[nn.Module] = nn.ReLU,
        sigmoid_output: bool = False,
    ) -> None:
        super().__init__()
        dims_in = [input_dim] + [hidden_dim] * (num_layers - 1)
        dims_out = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims_in, dims_out))
        self.act = activation()
        self.sigmoid_output = sigmoid_output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = self.act(x)
        return torch.sigmoid(x) if self.sigmoid_output else x


class LayerNorm2d(nn.Module):
    """Layer norm over the channel axis of a (B, C, H, W) tensor."""

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


def sine_position_grid(
    channels: int, height: int, width: int, device: torch.device, temperature: float = 10000.0
) -> torch.Tensor:
    """Normalised 2-D sine/cosine position code (DETR style): (channels, height, width).

    The first half of the channels encodes y, the second half x; within each half,
    sine and cosine of one frequency are interleaved.
    """
    half = channels // 2
    eps, scale = 1e-6, 2 * math.pi
    y = torch.arange(1, height + 1, dtype=torch.float32, device=device)
    x = torch.arange(1, width + 1, dtype=torch.float32, device=device)
    y = y / (y[-1] + eps) * scale
    x = x / (x[-1] + eps) * scale
    steps = torch.arange(half, dtype=torch.float32, device=device)
    freqs = temperature ** (2 * (steps // 2) / half)

    def encode(v: torch.Tensor) -> torch.Tensor:  # (N,) -> (N, half)
        angles = v[:, None] / freqs
        return torch.stack((angles[:, 0::2].sin(), angles[:, 1::2].cos()), dim=2).flatten(1)

    pos_y = encode(y)[:, None, :].expand(height, width, half)
    pos_x = encode(x)[None, :, :].expand(height, width, half)
    return torch.cat((pos_y, pos_x), dim=2).permute(2, 0, 1)


class SinePositionEncoding(nn.Module):
    """Module form of :func:`sine_position_grid`, cached per (H, W, device, dtype)."""

    def __init__(self, num_pos_feats: int, temperature: float = 10000.0) -> None:
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self._cache: dict[tuple[int, int, str, torch.dtype], torch.Tensor] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Position code for a (B, C, H, W) map: (B, num_pos_feats, H, W), in x's dtype."""
        b, _, h, w = x.shape
        # per dtype: converting the 256 x 256 level's code to bfloat16 took ~70 ms a frame (tiny at 1024)
        key = (h, w, str(x.device), x.dtype)
        if key not in self._cache:
            grid = sine_position_grid(self.num_pos_feats, h, w, x.device, self.temperature)
            self._cache[key] = grid.to(x.dtype)
        return self._cache[key][None].expand(b, -1, -1, -1)


def sine_1d(positions: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """1-D sine code of (N,) positions: (N, dim), sines then cosines."""
    half = dim // 2
    steps = torch.arange(half, dtype=torch.float32, device=positions.device)
    freqs = temperature ** (2 * (steps // 2) / half)
    angles = positions[:, None] / freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def axial_rope_angles(head_dim: int, side_x: int, side_y: int, theta: float) -> torch.Tensor:
    """Complex rotations for 2-D axial RoPE over a side_y x side_x grid: (side_y*side_x, head_dim/2)."""
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 4)[: head_dim // 4].float() / head_dim))
    index = torch.arange(side_x * side_y, dtype=torch.float32)
    t_x = index % side_x
    t_y = torch.div(index, side_x, rounding_mode="floor")
    angles_x = torch.outer(t_x, freqs)
    angles_y = torch.outer(t_y, freqs)
    rot_x = torch.polar(torch.ones_like(angles_x), angles_x)
    rot_y = torch.polar(torch.ones_like(angles_y), angles_y)
    return torch.cat([rot_x, rot_y], dim=-1)


def apply_rope(x: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs of x (B, heads, N, head_dim) by rotations (M, head_dim/2).

    When N is a multiple of M (memories of several frames), the rotations repeat per frame.
    """
    b, h, n, d = x.shape
    if n == 0:
        return x
    m = rotations.shape[0]
    shape = (b, h, n // m, m, d // 2, 2)  # frames of M tokens; rotations broadcast
    if torch.compiler.is_compiling():  # real arithmetic: compilers fuse it, complex numbers they do not
        cos, sin = rotations.real, rotations.imag  # (M, head_dim/2)
        x0, x1 = x.float().reshape(shape).unbind(-1)
        rotated = torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1)
    elif torch.is_grad_enabled():
        rotated = torch.view_as_real(torch.view_as_complex(x.float().reshape(shape)) * rotations)
    else:  # the same products, in place in a float32 copy: memory attention's keys 19 -> 3 ms a layer
        rotated = x.to(torch.float32, memory_format=torch.contiguous_format, copy=True).reshape(shape)
        torch.view_as_complex(rotated).mul_(rotations)  # (tiny at 1024, AMX)
    return rotated.reshape(b, h, n, d).type_as(x)


def tensors_version(tensors) -> int:
    """Changes whenever one of ``tensors`` is replaced or updated in place (a key for cached results).

    Inference tensors (weights made under ``torch.inference_mode()``, as ComfyUI runs its nodes) keep
    no version counter: only their storage and dtype name them."""
    return hash(tuple((t.data_ptr(), t.dtype, t.device, 0 if t.is_inference() else t._version) for t in tensors))


def resize_bilinear(x: torch.Tensor, size: tuple[int, int], antialias: bool = False) -> torch.Tensor:
    """Bilinear resize of (B, C, H, W) with half-pixel centres (align_corners=False)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=antialias)


_CHUNK_BYTES = 16 << 20  # attention-matrix bytes per chunk of queries on CPU (stays in L3: softmax 4x faster than 96 MB)
# queries per chunk of a large attention: oneDNN's bfloat16 matmuls (AMX, AVX-512) are fastest on row
# counts that are multiples of 64; 256 rows against 7 memories ran 1.4x faster than the 291 that
# the byte budget alone gave, and 2x faster than 2,048 rows against one frame
_CHUNK_ROWS = 256


def rows_per_chunk(keys: int, element_size: int) -> int:
    """Queries per chunk of one large CPU attention against ``keys`` keys: within the byte budget, a
    multiple of 64, at most ``_CHUNK_ROWS``."""
    return min(_CHUNK_ROWS, max(64, _CHUNK_BYTES // (keys * element_size) // 64 * 64))


def chunked_attention(q: torch.Tensor, dropout_p: float = 0.0) -> bool:
    """Whether :func:`attention` may take its explicit-matmul path (CPU, bfloat16 or float32, inference,
    not compiled: its shape-dependent loops would make a compiler recompile for every memory length)."""
    return (q.device.type == "cpu" and q.dtype in (torch.bfloat16, torch.float32) and dropout_p == 0
            and not q.requires_grad and not torch.compiler.is_compiling())


def mix_narrow_values_first(q: torch.Tensor, dropout_p: float = 0.0) -> bool:
    """Whether an attention whose value inputs are narrower than their projection (memories: 64
    against 256) should mix the inputs and project after, on the explicit path: in float32, and in
    bfloat16 except with AMX, where the fused kernel on projected values wins. Float32 memory attention of
    tiny at 1024 (Xeon without AMX): 2.68-2.77 s against 2.91-3.11 s fused."""
    return chunked_attention(q, dropout_p) and (q.dtype == torch.float32 or not cpu_has_amx())


def objects_one_at_a_time(device: torch.device) -> bool:
    """Whether the objects of a frame run one by one rather than as a batch: on CPU in inference,
    each object's keys, rotations and mask maps then stay in cache (in a batch of 16, the memory
    encoder took 3x longer per object and memory attention 1.2x); training and GPUs keep the batch."""
    return device.type == "cpu" and not torch.is_grad_enabled() and not torch.compiler.is_compiling()


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float = 0.0,
              key_valid: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v for (B, heads, N, d) queries and keys, (B, heads, M, dv) values.

    ``key_valid`` (B, M) bool: only the keys marked True take part (a padded memory bank); each
    row needs at least one.

    On CPU in inference, explicit matmuls in pieces whose score matrix stays in cache (several
    small windows at once, or a chunk of queries of one large attention) run faster than the
    fused kernel in bfloat16 without AMX, and wherever the values are narrower than the keys
    (the fused kernels are slow for those, such as memories mixed before their projection);
    everywhere else the fused kernel is used.
    """
    v = v.to(q.dtype)
    mask = None if key_valid is None else key_valid[:, None, None, :]  # (B, 1, 1, M) broadcasts over heads, queries
    if q.device.type == "cuda":
        with sdpa_kernel(_GPU_ATTENTION):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
    # AMX, tiny at 1024: the image encoder's global blocks 0.055 s fused against 0.091 s in pieces;
    # float32 without AMX: the image encoder 1.8 s fused against 2.3 s in pieces
    narrow_values = v.shape[-1] < q.shape[-1]
    pieces_win = narrow_values or (q.dtype == torch.bfloat16 and not cpu_has_amx())
    if not (chunked_attention(q, dropout_p) and pieces_win):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
    b, h, n, d = q.shape
    m = k.shape[-2]
    q = (q * d**-0.5).reshape(b * h, n, d)
    k, v = k.reshape(b * h, m, d), v.reshape(b * h, m, v.shape[-1])
    # (B*heads, 1, M) added to the scores: -inf drops a padded key (exactly zero weight)
    bias = None if key_valid is None else torch.zeros(b, 1, m, dtype=q.dtype, device=q.device).masked_fill(
        ~key_valid[:, None], float("-inf")).repeat_interleave(h, dim=0)
    out = q.new_empty(b * h, n, v.shape[-1])
    per_item = n * m * q.element_size()  # bytes of one item's full score matrix
    if per_item <= _CHUNK_BYTES:  # many small attentions (windows): batches of whole items
        group = _CHUNK_BYTES // per_item
        for i in range(0, b * h, group):
            scores = torch.bmm(q[i : i + group], k[i : i + group].transpose(1, 2))
            if bias is not None:
                scores += bias[i : i + group]
            out[i : i + group] = torch.bmm(scores.softmax(dim=-1), v[i : i + group])
    else:  # one large attention at a time, in chunks of queries
        chunk = rows_per_chunk(m, q.element_size())
        for i in range(b * h):
            kt = k[i].transpose(0, 1).contiguous()  # (d, M): one copy, not one per chunk
            for start in range(0, n, chunk):
                scores = torch.matmul(q[i, start : start + chunk], kt)  # (chunk, M)
                if bias is not None:
                    scores += bias[i]
                out[i, start : start + chunk] = torch.matmul(scores.softmax(dim=-1), v[i])
    return out.reshape(b, h, n, -1)

"""Plausible convolution bugs, each planted in a copy of a correct backend.

The verifier is only worth its verdicts: :func:`kill_report` registers every mutant as a
backend, verifies it with the default budget, and reports whether it was caught ("killed")
and after how many cases. Each mutant is torch's (correct) convolution with one bug added,
so any failure is the planted bug's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.ops.args import DTYPES, FLOAT_DTYPES, HALF_DTYPES
from harness.ops.padding import pad_input
from harness.backend.registry import get_backend, register_backend, unregister_backend, with_role
from harness.verify.verifier import DEFAULT_CASES, verify


def _correct(x, w, b, spec):
    """The CPU baseline's (torch's) conv2d: correct, and independent of the reference loops."""
    return get_backend(with_role("baseline")).ops["conv2d"](x, w, b, spec)


def _valid_conv(xp, w, b, spec):
    """The correct convolution of an already padded input."""
    return _correct(xp, w, b, spec.with_(H=xp.shape[2], W=xp.shape[3], padding=(0, 0, 0, 0), padding_mode="zeros"))


def flipped_kernel(x, w, b, spec):
    return _correct(x, np.ascontiguousarray(w[:, :, ::-1, ::-1]), b, spec)


def hw_swapped_kernel(x, w, b, spec):
    # the kernel read with its height and width strides exchanged
    swapped = np.ascontiguousarray(w).reshape(spec.O, -1, spec.KW, spec.KH).transpose(0, 1, 3, 2)
    return _correct(x, np.ascontiguousarray(swapped), b, spec)


def padding_off_by_one_top(x, w, b, spec):
    xp = pad_input(x, spec)
    shifted = np.pad(xp, ((0, 0), (0, 0), (1, 0), (0, 0)), mode="edge")[:, :, :-1]
    return _valid_conv(shifted, w, b, spec)


def same_split_reversed(x, w, b, spec):
    top, bottom, left, right = spec.padding  # the odd extra row/column before instead of after
    return _correct(x, w, b, spec.with_(padding=(bottom, top, right, left)))


def stride_ignored_on_width(x, w, b, spec):
    y = _correct(x, w, b, spec.with_(stride=(spec.stride[0], 1)))
    return np.ascontiguousarray(y[..., : spec.OW])


def dilation_ignored_on_width(x, w, b, spec):
    y = _correct(x, w, b, spec.with_(dilation=(spec.dilation[0], 1)))
    return np.ascontiguousarray(y[..., : spec.OW])


def groups_mapped_wrongly(x, w, b, spec):
    g = spec.groups
    return _correct(x, np.roll(w.reshape((g, -1) + w.shape[1:]), 1, axis=0).reshape(w.shape), b, spec)


def depth_multiplier_mapped_wrongly(x, w, b, spec):
    # output channel o reads input channel o % C instead of o // multiplier
    y = _correct(x, w, b, spec)
    if not spec.is_depthwise or spec.O == spec.C:
        return y
    m = spec.O // spec.C
    o = np.arange(spec.O)
    source = (o % spec.C) * m + (o // spec.C)  # the output that torch computes with x[o % C]
    w_moved = np.empty_like(w)
    w_moved[source] = w
    moved = _correct(x, w_moved, None if b is None else np.zeros_like(b), spec.with_(bias=False))
    return moved[:, source] + (0 if b is None else b[:, None, None])


def bias_dropped(x, w, b, spec):
    return _correct(x, w, None, spec.with_(bias=False))


def bias_doubled(x, w, b, spec):
    y = _correct(x, w, b, spec)
    return y if b is None else y + b[:, None, None]


def reflect_as_symmetric(x, w, b, spec):
    if spec.padding_mode != "reflect":
        return _correct(x, w, b, spec)
    top, bottom, left, right = spec.padding
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), mode="symmetric")
    return _valid_conv(xp, w, b, spec)


def batch_elements_mixed(x, w, b, spec):
    return _correct(np.ascontiguousarray(np.roll(x, 1, axis=0)), w, b, spec)


def channel_block_dropped_for_large_c(x, w, b, spec):
    if spec.C // spec.groups <= 64:
        return _correct(x, w, b, spec)
    kept = np.array(w)
    kept[:, 64:] = 0  # the reduction forgets channels past the first block of 64
    return _correct(x, kept, b, spec)


def float16_accumulation(x, w, b, spec):
    xp = pad_input(x, spec).astype(np.float16)
    (sh, sw), (dh, dw) = spec.stride, spec.dilation
    Cg, Og = spec.C // spec.groups, spec.O // spec.groups
    y = np.zeros(spec.out_shape, np.float16)
    for o in range(spec.O):
        for c in range(Cg):
            plane = xp[:, (o // Og) * Cg + c]
            for p in range(spec.KH):
                for q in range(spec.KW):
                    taps = plane[:, p * dh:p * dh + (spec.OH - 1) * sh + 1:sh, q * dw:q * dw + (spec.OW - 1) * sw + 1:sw]
                    y[:, o] += taps * np.float16(w[o, c, p, q])
    y = y.astype(spec.dtype)
    return y if b is None else y + b[:, None, None]


def half_precision_accumulation(x, w, b, spec):
    # float16/bfloat16: each input channel's products summed in float32, but the running sum over
    # the channels kept in the half dtype (a kernel whose accumulator has the storage type)
    if spec.dtype not in HALF_DTYPES:
        return _correct(x, w, b, spec)
    G, Cg = spec.groups, spec.C // spec.groups
    one_channel = spec.with_(C=G, dtype="float32", bias=False)  # channel c of every group
    acc = np.zeros(spec.out_shape, dtype=spec.dtype)
    for c in range(Cg):
        partial = _correct(np.ascontiguousarray(x[:, c::Cg], dtype=np.float32),
                           np.ascontiguousarray(w[:, c:c + 1], dtype=np.float32), None, one_channel)
        acc = acc + partial.astype(spec.dtype)  # rounded to the half dtype after every channel
    return acc if b is None else acc + b[:, None, None]


def wrong_output_dtype(x, w, b, spec):
    return _correct(x.astype(np.float64), w.astype(np.float64), None if b is None else b.astype(np.float64),
                    spec.with_(dtype="float64"))


def input_modified_in_place(x, w, b, spec):
    owner = x
    while isinstance(owner.base, np.ndarray):  # reach the caller's array past the read-only view
        owner = owner.base
    if owner.flags.writeable and owner.size:
        owner.reshape(-1)[0] += 1  # e.g. a kernel that pads or normalises its input in place
    return _correct(x, w, b, spec)


def nan_turned_into_zero(x, w, b, spec):
    return _correct(np.nan_to_num(x, nan=0.0), w, b, spec)


def last_output_row_cropped(x, w, b, spec):
    y = _correct(x, w, b, spec)
    y[:, :, -1:] = 0
    return y


# -- scale-dependent bugs: each shows only past a size that the small random cases never reach,
# as blocked, tiled and threaded kernels break; only the scale tier (harness.verify.scale) catches them.
def channel_block_past_1024_dropped(x, w, b, spec):
    # a reduction blocked by 1,024 input channels that forgets every block after the first
    if spec.C // spec.groups <= 1024:
        return _correct(x, w, b, spec)
    kept = np.array(w)
    kept[:, 1024:] = 0
    return _correct(x, kept, b, spec)


def tile_past_64_columns_shifted(x, w, b, spec):
    # output tiles of 64 columns: every tile after the first stored one column late
    y = _correct(x, w, b, spec)
    if spec.OW > 64:
        y[..., 65:] = y[..., 64:-1].copy()
    return y


def batch_split_past_16_offset(x, w, b, spec):
    # the batch split over threads in chunks of 16: later chunks read the first chunk's images
    y = _correct(x, w, b, spec)
    if spec.N > 16:
        y[16:] = _correct(np.ascontiguousarray(x[:spec.N - 16]), w, b, spec.with_(N=spec.N - 16))
    return y


def group_index_past_32_wrapped(x, w, b, spec):
    # a group index kept in 5 bits: grouped (not depthwise) convolutions past 32 groups reuse groups 0..31
    g = spec.groups
    if g <= 32 or spec.is_depthwise:
        return _correct(x, w, b, spec)
    per_group = w.reshape((g, -1) + w.shape[1:])
    wrapped = per_group[np.arange(g) % 32].reshape(w.shape)
    return _correct(x, np.ascontiguousarray(wrapped), b, spec)


def depthwise_past_512_channels_wrapped(x, w, b, spec):
    # a depthwise kernel whose channel loop wraps at 512: channel c >= 512 uses the filter of c - 512
    if not spec.is_depthwise or spec.C <= 512:
        return _correct(x, w, b, spec)
    m = spec.O // spec.C
    source = np.arange(spec.O)
    source[512 * m:] -= 512 * m
    return _correct(x, np.ascontiguousarray(w[source]), b, spec)


def reduction_past_8192_truncated(x, w, b, spec):
    # a split-K GEMM whose K blocks of 8,192 lose all but the first: long reductions drop terms
    if spec.n_acc <= 8192:
        return _correct(x, w, b, spec)
    flat = np.array(w).reshape(spec.O, -1)
    flat[:, 8192:] = 0
    return _correct(x, flat.reshape(w.shape), b, spec)


#: The bugs that only the scale tier reaches.
SCALE_MUTANTS = ("channel_block_past_1024_dropped", "tile_past_64_columns_shifted", "batch_split_past_16_offset",
                 "group_index_past_32_wrapped", "depthwise_past_512_channels_wrapped",
                 "reduction_past_8192_truncated")

#: Dtypes a mutant is registered with, where not float32 and float64 (the half-precision bugs).
MUTANT_DTYPES = {"half_precision_accumulation": DTYPES}

#: Every planted bug, by name.
MUTANTS = {
    fn.__name__: fn
    for fn in (
        flipped_kernel, hw_swapped_kernel, padding_off_by_one_top, same_split_reversed,
        stride_ignored_on_width, dilation_ignored_on_width, groups_mapped_wrongly,
        depth_multiplier_mapped_wrongly, bias_dropped, bias_doubled, reflect_as_symmetric,
        batch_elements_mixed, channel_block_dropped_for_large_c, float16_accumulation, half_precision_accumulation,
        wrong_output_dtype, input_modified_in_place, nan_turned_into_zero, last_output_row_cropped,
        channel_block_past_1024_dropped, tile_past_64_columns_shifted, batch_split_past_16_offset,
        group_index_past_32_wrapped, depthwise_past_512_channels_wrapped, reduction_past_8192_truncated,
    )
}


def kill_report(cases: int = DEFAULT_CASES, seed: int = 0, names=None, *, table: bool = True,
                scale: bool | None = None) -> pd.DataFrame:
    """Verify every mutant with the given budget: killed or not, and after how many cases.

    Verification of a mutant stops at its first failure, so ``cases_to_kill`` is the number
    of cases run (table first, then random, then the scale tier) until the bug showed;
    ``caught_by`` is the source of that case. ``table`` and ``scale`` are passed to
    :func:`harness.verify` (``scale=None``: the tier with budgets from the default up).
    """
    rows = []
    for name in names or MUTANTS:
        backend = f"mutant_{name}"
        register_backend(backend, conv2d=MUTANTS[name], replace=True, description=f"planted bug: {name}",
                         dtypes=MUTANT_DTYPES.get(name, FLOAT_DTYPES))
        try:
            report = verify(backend, cases=cases, seed=seed, max_failures=1, shrink_failures=False, table=table,
                            scale=scale)
        finally:
            unregister_backend(backend)
        failed = report[report.status == "failed"]
        rows.append({
            "mutant": name,
            "killed": not failed.empty,
            "cases_to_kill": len(report) if not failed.empty else np.nan,
            "caught_by": failed.iloc[0].source if not failed.empty else "",
            "first_failure": failed.iloc[0].message if not failed.empty else "",
            "case": failed.iloc[0].case if not failed.empty else "",
        })
    return pd.DataFrame(rows)

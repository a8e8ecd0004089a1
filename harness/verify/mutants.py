"""Plausible convolution bugs, each planted in a copy of a correct backend.

The verifier is only worth its verdicts: :func:`kill_report` registers every mutant as a
backend, verifies it with the default budget, and reports whether it was caught ("killed")
and after how many cases. Each mutant is torch's (correct) convolution with one bug added,
so any failure is the planted bug's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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


#: Every planted bug, by name.
MUTANTS = {
    fn.__name__: fn
    for fn in (
        flipped_kernel, hw_swapped_kernel, padding_off_by_one_top, same_split_reversed,
        stride_ignored_on_width, dilation_ignored_on_width, groups_mapped_wrongly,
        depth_multiplier_mapped_wrongly, bias_dropped, bias_doubled, reflect_as_symmetric,
        batch_elements_mixed, channel_block_dropped_for_large_c, float16_accumulation,
        wrong_output_dtype, input_modified_in_place, nan_turned_into_zero, last_output_row_cropped,
    )
}


def kill_report(cases: int = DEFAULT_CASES, seed: int = 0, names=None) -> pd.DataFrame:
    """Verify every mutant with the given budget: killed or not, and after how many cases.

    Verification of a mutant stops at its first failure, so ``cases_to_kill`` is the number
    of cases run (table first, then random) until the bug showed.
    """
    rows = []
    for name in names or MUTANTS:
        backend = f"mutant_{name}"
        register_backend(backend, conv2d=MUTANTS[name], replace=True, description=f"planted bug: {name}")
        try:
            report = verify(backend, cases=cases, seed=seed, max_failures=1, shrink_failures=False)
        finally:
            unregister_backend(backend)
        failed = report[report.status == "failed"]
        rows.append({
            "mutant": name,
            "killed": not failed.empty,
            "cases_to_kill": len(report) if not failed.empty else np.nan,
            "first_failure": failed.iloc[0].message if not failed.empty else "",
            "case": failed.iloc[0].case if not failed.empty else "",
        })
    return pd.DataFrame(rows)

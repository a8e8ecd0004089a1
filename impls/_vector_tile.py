"""A register-resident accumulator tile for Numba kernels, written as LLVM IR.

Numba's loop vectorizer vectorizes the innermost loop only, and Numba turns LLVM's SLP vectorizer
off, so a kernel written in Python keeps its accumulators in memory: every pass over the reduction
loads and stores each accumulator, and short output rows spend their time in loop overhead. This
intrinsic emits the micro-kernel of a direct convolution (or any offset GEMM) in IR instead:

    acc[o, v*L:(v+1)*L] = bias[ch[o]] + sum_r  w[ch[o] * R + r] * x[base + off[r] + v*L : ... + L]

for ``o < OB`` output channels and ``v < V`` vectors of ``L`` lanes (one 64-byte vector: 16
float32 or 8 float64). The ``OB * V`` accumulators are stack slots that LLVM promotes to
registers; each reduction item costs ``V`` contiguous vector loads, ``OB`` scalar broadcasts and
``OB * V`` multiply-adds, with no accumulator traffic. Items are added in order, one fused
multiply-add (``llvm.fmuladd``) per item, starting from the bias: the same summation order for
every thread count and tile size.

Numba's on-disk cache of a kernel that uses these intrinsics is keyed on the kernel's own source
file: after editing this module, touch that file (or clear ``impls/__pycache__``) so the kernels
are compiled again.
"""

from __future__ import annotations

from functools import lru_cache

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

#: Bytes per vector register the tile is laid out for (AVX-512; narrower machines split it).
VECTOR_BYTES = 64


def lanes(itemsize: int) -> int:
    """Elements per vector for an element size in bytes."""
    return VECTOR_BYTES // itemsize


def _float_arrays(*arrays) -> bool:
    """Whether every argument is an array of one float type (float32 or float64)."""
    return all(isinstance(a, types.Array) and a.dtype == arrays[0].dtype for a in arrays) \
        and arrays[0].dtype in (types.float32, types.float64)


def _vector(dtype):
    """``(vector type, lanes, element bytes, intrinsic suffix)`` for a Numba float dtype."""
    itemsize = dtype.bitwidth // 8
    n_lanes = lanes(itemsize)
    element = ir.FloatType() if dtype == types.float32 else ir.DoubleType()
    return ir.VectorType(element, n_lanes), n_lanes, itemsize, f"v{n_lanes}{'f32' if itemsize == 4 else 'f64'}"


def _splat(builder, scalar, n_lanes: int):
    """``scalar`` in every lane of an ``n_lanes`` vector."""
    undef = ir.Constant(ir.VectorType(scalar.type, n_lanes), ir.Undefined)
    first = builder.insert_element(undef, scalar, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(first, undef, ir.Constant(ir.VectorType(ir.IntType(32), n_lanes), [0] * n_lanes))


@lru_cache(maxsize=None)
def tile_fma(ob: int, v: int):
    """The intrinsic for ``ob`` output channels x ``v`` vectors of positions.

    ``tile(acc, x, base, off, w, ch, bias, n_items)``: ``acc`` (>= ob * v * L, written),
    ``x`` flat input, ``base`` its start offset, ``off`` (n_items,) int64 item offsets,
    ``w`` flat weights (row ``ch[o]`` holds channel ``ch[o]``'s ``n_items`` items), ``ch``
    (ob,) int64 channel of each row of the tile, ``bias`` (channels,). Reads ``x`` at
    ``base + off[r] + t`` for ``t < v * L``: the caller keeps that inside ``x``.
    """

    @intrinsic
    def tile(typingctx, acc, x, base, off, w, ch, bias, n_items):
        if not _float_arrays(acc, x, w, bias):
            return None
        sig = types.void(acc, x, base, off, w, ch, bias, n_items)

        def codegen(context, builder, signature, args):
            acc_v, x_v, base_v, off_v, w_v, ch_v, bias_v, n_v = args
            ty = signature.args
            accp, xp, offp, wp, chp, biasp = (
                context.make_array(t)(context, builder, a).data
                for t, a in ((ty[0], acc_v), (ty[1], x_v), (ty[3], off_v), (ty[4], w_v),
                             (ty[5], ch_v), (ty[6], bias_v)))
            vt, n_lanes, itemsize, suffix = _vector(ty[0].dtype)
            i64 = ir.IntType(64)
            fmuladd = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vt, [vt, vt, vt]), f"llvm.fmuladd.{suffix}")

            def vector_at(ptr, index):
                return builder.bitcast(builder.gep(ptr, [index]), vt.as_pointer())

            n_items = builder.sext(n_v, i64) if n_v.type.width < 64 else n_v
            rows, slots = [], []
            for o in range(ob):
                channel = builder.load(builder.gep(chp, [ir.Constant(i64, o)]))
                rows.append(builder.gep(wp, [builder.mul(channel, n_items)]))
                start = _splat(builder, builder.load(builder.gep(biasp, [channel])), n_lanes)
                for _ in range(v):
                    slot = cgutils.alloca_once(builder, vt)
                    builder.store(start, slot)
                    slots.append(slot)
            x0 = builder.gep(xp, [base_v])
            with cgutils.for_range(builder, n_items) as loop:
                r = loop.index
                xr = builder.gep(x0, [builder.load(builder.gep(offp, [r]))])
                xs = [builder.load(vector_at(xr, ir.Constant(i64, k * n_lanes)), align=itemsize)
                      for k in range(v)]
                for o in range(ob):
                    wo = _splat(builder, builder.load(builder.gep(rows[o], [r])), n_lanes)
                    for k in range(v):
                        slot = slots[o * v + k]
                        builder.store(builder.call(fmuladd, [wo, xs[k], builder.load(slot)]), slot)
            for i, slot in enumerate(slots):
                builder.store(builder.load(slot), vector_at(accp, ir.Constant(i64, i * n_lanes)), align=itemsize)
            return context.get_dummy_value()

        return sig, codegen

    return tile


@intrinsic
def copy_run(typingctx, dst, d0, src, s0, count):
    """``dst[d0 + t] = src[s0 + t]`` for ``t < count`` (1-D arrays of one float type), in
    masked 64-byte vectors: a run shorter than a vector (an output row of a 7x7 plane, an input
    row being padded) costs one masked load and store, not a scalar loop."""
    if not _float_arrays(dst, src):
        return None
    sig = types.void(dst, d0, src, s0, count)

    def codegen(context, builder, signature, args):
        dst_v, d0_v, src_v, s0_v, count_v = args
        dp = context.make_array(signature.args[0])(context, builder, dst_v).data
        sp = context.make_array(signature.args[2])(context, builder, src_v).data
        vt, n_lanes, itemsize, suffix = _vector(signature.args[0].dtype)
        i32, i64 = ir.IntType(32), ir.IntType(64)
        mt = ir.VectorType(ir.IntType(1), n_lanes)
        load = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vt, [vt.as_pointer(), i32, mt, vt]), f"llvm.masked.load.{suffix}.p0{suffix}")
        store = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [vt, vt.as_pointer(), i32, mt]), f"llvm.masked.store.{suffix}.p0{suffix}")
        count = builder.sext(count_v, i64) if count_v.type.width < 64 else count_v
        count = builder.select(builder.icmp_signed("<", count, ir.Constant(i64, 0)), ir.Constant(i64, 0), count)
        n_chunks = builder.udiv(builder.add(count, ir.Constant(i64, n_lanes - 1)), ir.Constant(i64, n_lanes))
        lane_ids = ir.Constant(ir.VectorType(i64, n_lanes), list(range(n_lanes)))
        undef = ir.Constant(vt, ir.Undefined)
        with cgutils.for_range(builder, n_chunks) as loop:
            start = builder.mul(loop.index, ir.Constant(i64, n_lanes))
            mask = builder.icmp_unsigned("<", lane_ids, _splat(builder, builder.sub(count, start), n_lanes))
            sptr = builder.bitcast(builder.gep(sp, [builder.add(s0_v, start)]), vt.as_pointer())
            dptr = builder.bitcast(builder.gep(dp, [builder.add(d0_v, start)]), vt.as_pointer())
            value = builder.call(load, [sptr, ir.Constant(i32, itemsize), mask, undef])
            builder.call(store, [value, dptr, ir.Constant(i32, itemsize), mask])
        return context.get_dummy_value()

    return sig, codegen

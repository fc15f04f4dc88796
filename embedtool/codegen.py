"""Code-generation helpers for the CPU kernels that numba does not offer itself.

- ``stack_array(size, like)``: a 1-D array of a compile-time ``size`` on the stack, of ``like``'s dtype (``like`` is
  an array or a number). A kernel compiled for one column-block width (``bag._pool_kernel``) keeps its accumulator
  in such an array; its size being a constant, LLVM holds it in vector registers for the whole bag, as fbgemm's
  generated kernels do.
- ``wide_vectors()``: lets LLVM vectorise the calling function with 512-bit registers. On AVX-512 CPUs LLVM prefers
  256-bit vectors by default (a guard against clock throttling on old Xeons); for sums of rows that are already in
  cache, twice the width is worth up to 1.3x. Without AVX-512 the attribute changes nothing.
- ``prefetch(array, index)``: a software prefetch of one element's cache line, for rows read in random order.
- ``vector_fill``, ``vector_copy``, ``vector_add``, ``vector_max`` and ``vector_divide``: element-wise operations on
  ``width`` (a compile-time constant) consecutive elements, emitted as whole-vector instructions. LLVM's loop
  vectoriser leaves short loops alone (it unrolls loops of up to about 32 elements into scalar code first, and numba
  keeps the SLP vectoriser that would regroup them off), so a 16-column accumulator loop ran 16 scalar additions per
  row, with spills; written as vectors, a ``stack_array`` accumulator lives in vector registers at every width.
  A source of float16 bits (uint16) is widened to float32 as it is loaded, in registers (``vcvtph2ps``; only for
  CPUs with F16C, ``HAS_F16C``: elsewhere LLVM would call a runtime function that numba does not link).
- ``any_scaled_above(values, scale, index, width, threshold)``: whether any of ``width`` scaled elements beats a
  threshold, in vector compares, for the top-k scan of ``similarity.py``.
- ``load_word(array, index)`` and ``trailing_zeros(x)``: eight bytes at once as a uint64, and the position of its
  lowest set bit, for parsers that look at a whole number's digits in one step (``token_kernels.parse_ids``).
- ``stream_line(dst, i, src, k)``, ``stream_scaled_line(dst, i, src, k, scale)`` and ``store_fence()``: a 64-byte
  non-temporal copy, for outputs too large to
  stay in cache: the line is written without first being read (a normal store reads it in), a third less memory
  traffic, as glibc's memcpy does for large copies.

All are plain LLVM IR (an ``alloca``, a function attribute, intrinsic calls, store metadata), so kernels using them still cache to disk.
"""

from __future__ import annotations

import llvmlite.binding as llvm
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic
from numba.np.arrayobj import populate_array

from . import kernel_cache

kernel_cache.watch_compiles()  # every kernel module imports this one: its compiles are timed and announced


@intrinsic
def stack_array(typingctx, size, like):
    """A C-contiguous 1-D array of ``size`` (an integer known at compile time) elements of ``like``'s dtype."""
    if not isinstance(size, types.IntegerLiteral) or not isinstance(like, (types.Array, types.Number)):
        return None
    length = size.literal_value
    dtype = like.dtype if isinstance(like, types.Array) else like
    array_type = types.Array(dtype, 1, "C")

    def codegen(context, builder, signature, args):
        element = context.get_data_type(dtype)
        intp = context.get_value_type(types.intp)
        data = cgutils.alloca_once(builder, element, size=ir.Constant(intp, length))
        itemsize = context.get_abi_sizeof(element)
        array = context.make_array(array_type)(context, builder)
        populate_array(array, data=data, shape=[ir.Constant(intp, length)], strides=[ir.Constant(intp, itemsize)],
                       itemsize=ir.Constant(intp, itemsize), meminfo=None)
        return array._getvalue()

    return array_type(size, like), codegen


@intrinsic
def wide_vectors(typingctx):
    """Allow 512-bit vectors in the calling function (LLVM's ``prefer-vector-width``; llvmlite has no setter)."""

    def codegen(context, builder, signature, args):
        set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def prefetch(typingctx, array, index):
    """Ask the CPU to bring ``array[index]``'s cache line in (LLVM's ``llvm.prefetch``: read, keep in all levels)."""
    if not isinstance(array, types.Array):
        return None

    def codegen(context, builder, signature, args):
        pointer = _element_pointer(context, builder, *signature.args, *args)
        byte_pointer = builder.bitcast(pointer, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [byte_pointer.type, i32, i32, i32])
        fn = builder.module.declare_intrinsic("llvm.prefetch", fnty=fnty)
        builder.call(fn, [byte_pointer, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, index), codegen

#: Whether this CPU converts float16 to float32 in vector registers (x86's F16C, since 2012): ``vector_*`` take
#: float16 sources only then.
HAS_F16C = bool(llvm.get_host_cpu_features().get("f16c"))


def _chunks(width: int, itemsize: int) -> list[tuple[int, int]]:
    """``(first, count)`` element ranges covering ``width`` elements: 64-byte vectors, then halving ones for the
    rest (100 float32: six of 16, one of 4). LLVM splits a 64-byte vector into two where registers are 32 bytes."""
    found, first, per = [], 0, 64 // itemsize
    while first < width:
        count = per
        while count > width - first:
            count //= 2
        found.append((first, count))
        first += count
    return found


def _elementwise(context, builder, signature, args, width, combine, with_source=True):
    """Emit ``dst[k] = combine(dst vector, src vector)`` over ``width`` elements from ``&dst[dst_index]`` (and
    ``&src[src_index]``), one vector load and store per chunk. ``args`` start with dst, dst_index[, src, src_index].
    A uint16 array holds float16 bits: its chunks are widened to float32 as they are loaded (``vcvtph2ps``, exact)
    and rounded to nearest even as they are stored (``vcvtps2ph``, as NumPy's cast rounds)."""
    sides = [(signature.args[k].dtype, _element_pointer(context, builder, *signature.args[k:k + 2], *args[k:k + 2]))
             for k in ((0, 2) if with_source else (0,))]
    halves = any(dtype == types.uint16 for dtype, _ in sides)
    compute = ir.FloatType() if halves else context.get_data_type(sides[0][0])
    i64 = ir.IntType(64)
    for first, count in _chunks(width, context.get_abi_sizeof(compute)):
        chunks, values = [], []
        for dtype, pointer in sides:
            memory = ir.VectorType(context.get_data_type(dtype), count)
            chunks.append(builder.bitcast(builder.gep(pointer, [i64(first)]), memory.as_pointer()))
            value = builder.load(chunks[-1], align=dtype.bitwidth // 8)
            if dtype == types.uint16:
                value = builder.fpext(builder.bitcast(value, ir.VectorType(ir.HalfType(), count)),
                                      ir.VectorType(compute, count))
            values.append(value)
        result = combine(builder, *values)
        if sides[0][0] == types.uint16:
            result = builder.bitcast(builder.fptrunc(result, ir.VectorType(ir.HalfType(), count)),
                                     chunks[0].type.pointee)
        builder.store(result, chunks[0], align=sides[0][0].bitwidth // 8)


def _splat(builder, value, like):
    """A vector of ``like``'s type with every element ``value``."""
    count = like.type.count
    single = builder.insert_element(ir.Constant(like.type, None), value, ir.IntType(32)(0))
    return builder.shuffle_vector(single, single, ir.Constant(ir.VectorType(ir.IntType(32), count), [0] * count))


def _same_floats(dst, src=None) -> bool:
    """Whether ``dst`` and ``src`` are C-contiguous arrays (so ``width`` elements from one on are adjacent) of one
    float dtype, or ``src`` holds float16 bits (uint16) for a float32 ``dst`` (on F16C CPUs)."""
    def contiguous(a):
        return isinstance(a, types.Array) and a.layout == "C"

    if not (contiguous(dst) and isinstance(dst.dtype, types.Float)):
        return False
    return src is None or contiguous(src) and (
        src.dtype == dst.dtype or src.dtype == types.uint16 and dst.dtype == types.float32 and HAS_F16C)


def _with_scalar(width, operation):
    """The codegen of ``dst[k] = operation(builder, dst vector, scalar vector)`` over ``width`` elements, for
    intrinsics taking ``(dst, dst_index, width, scalar)``."""

    def codegen(context, builder, signature, args):
        scalar = context.cast(builder, args[3], signature.args[3], signature.args[0].dtype)
        _elementwise(context, builder, signature, args, width.literal_value,
                     lambda b, old: operation(b, old, _splat(b, scalar, old)), with_source=False)
        return context.get_dummy_value()

    return codegen


@intrinsic
def vector_fill(typingctx, dst, dst_index, width, value):
    """``dst[dst_index:][:width] = value`` (the elements from ``&dst[dst_index]`` on, in memory order)."""
    if not (_same_floats(dst) and isinstance(width, types.IntegerLiteral)):
        return None
    return types.void(dst, dst_index, width, value), _with_scalar(width, lambda b, old, value: value)


@intrinsic
def vector_divide(typingctx, dst, dst_index, width, divisor):
    """``dst[dst_index:][:width] /= divisor`` (a true division, as ``/=`` on each element)."""
    if not (_same_floats(dst) and isinstance(width, types.IntegerLiteral)):
        return None
    return types.void(dst, dst_index, width, divisor), _with_scalar(width, lambda b, old, by: b.fdiv(old, by))


@intrinsic
def vector_copy(typingctx, dst, dst_index, src, src_index, width):
    """``dst[dst_index:][:width] = src[src_index:][:width]``; float32 into float16 bits (uint16) too."""
    if not ((_same_floats(dst, src) or _same_floats(src, dst)) and isinstance(width, types.IntegerLiteral)):
        return None

    def codegen(context, builder, signature, args):
        _elementwise(context, builder, signature, args, width.literal_value, lambda b, old, new: new)
        return context.get_dummy_value()

    return types.void(dst, dst_index, src, src_index, width), codegen


@intrinsic
def vector_add(typingctx, dst, dst_index, src, src_index, width, scale):
    """``dst[dst_index:][:width] += src[src_index:][:width]``, each term times ``scale`` first unless it is None
    (rounded as ``dst[k] += scale * src[k]``: a multiplication, then an addition, never fused)."""
    if not (_same_floats(dst, src) and isinstance(width, types.IntegerLiteral)):
        return None

    def codegen(context, builder, signature, args):
        if isinstance(signature.args[5], types.NoneType):
            combine = lambda b, old, new: b.fadd(old, new)  # noqa: E731
        else:
            factor = context.cast(builder, args[5], signature.args[5], signature.args[0].dtype)
            combine = lambda b, old, new: b.fadd(old, b.fmul(_splat(b, factor, new), new))  # noqa: E731
        _elementwise(context, builder, signature, args, width.literal_value, combine)
        return context.get_dummy_value()

    return types.void(dst, dst_index, src, src_index, width, scale), codegen


@intrinsic
def vector_max(typingctx, dst, dst_index, src, src_index, width):
    """``dst[k] = src[k] if src[k] > dst[k] else dst[k]`` over ``width`` elements: a NaN already in ``dst`` stays,
    a NaN in ``src`` never wins (one ``vmaxps`` per vector)."""
    if not (_same_floats(dst, src) and isinstance(width, types.IntegerLiteral)):
        return None

    def codegen(context, builder, signature, args):
        _elementwise(context, builder, signature, args, width.literal_value,
                     lambda b, old, new: b.select(b.fcmp_ordered(">", new, old), new, old))
        return context.get_dummy_value()

    return types.void(dst, dst_index, src, src_index, width), codegen


@intrinsic
def any_scaled_above(typingctx, values, scale, index, width, threshold):
    """Whether ``values[index + t] * scale[index + t] > threshold`` for any ``t < width`` (a compile-time constant):
    a vector multiply and compare per 64 bytes and one test of the masks, no branch per element. A top-k scan
    (``similarity._top_k_block``) skips most scores with it; LLVM leaves the equivalent short loop scalar."""
    if not (_same_floats(values, scale) and values.dtype == scale.dtype and isinstance(width, types.IntegerLiteral)):
        return None

    def codegen(context, builder, signature, args):
        element = context.get_data_type(signature.args[0].dtype)
        limit = context.cast(builder, args[4], signature.args[4], signature.args[0].dtype)
        pointers = [_element_pointer(context, builder, signature.args[k], signature.args[2], args[k], args[2])
                    for k in (0, 1)]
        i64 = ir.IntType(64)
        hit = ir.Constant(ir.IntType(1), 0)
        for first, count in _chunks(width.literal_value, context.get_abi_sizeof(element)):
            vector = ir.VectorType(element, count)
            a, b = (builder.load(builder.bitcast(builder.gep(p, [i64(first)]), vector.as_pointer()),
                                 align=context.get_abi_sizeof(element)) for p in pointers)
            above = builder.fcmp_ordered(">", builder.fmul(a, b), _splat(builder, limit, a))
            mask = builder.bitcast(above, ir.IntType(count))
            hit = builder.or_(hit, builder.icmp_unsigned("!=", mask, ir.Constant(ir.IntType(count), 0)))
        return hit

    return types.boolean(values, scale, index, width, threshold), codegen


def _element_pointer(context, builder, array_type, index_type, array, index):
    """``&array[index]``; ``index`` is an integer or a tuple of them, never negative (no wraparound)."""
    ary = context.make_array(array_type)(context, builder, array)
    indices = cgutils.unpack_tuple(builder, index) if isinstance(index_type, types.BaseTuple) else [index]
    return cgutils.get_item_pointer(context, builder, array_type, ary, indices, wraparound=False)


def _line_pointers(context, builder, signature, args, element):
    """Pointers to ``&dst[dst_index]`` and ``&src[src_index]`` (the first four arguments), as 64-byte vectors."""
    line = ir.VectorType(element, 64 // context.get_abi_sizeof(element))
    pointers = [_element_pointer(context, builder, *signature.args[k:k + 2], *args[k:k + 2]) for k in (0, 2)]
    return [builder.bitcast(pointer, line.as_pointer()) for pointer in pointers]


@intrinsic
def load_word(typingctx, array, index):
    """The 8 bytes from ``&array[index]`` on, as a little-endian uint64 (any alignment; the caller keeps all 8 in
    bounds)."""
    if not isinstance(array, types.Array):
        return None

    def codegen(context, builder, signature, args):
        pointer = _element_pointer(context, builder, *signature.args, *args)
        return builder.load(builder.bitcast(pointer, ir.IntType(64).as_pointer()), align=1)

    return types.uint64(array, index), codegen


@intrinsic
def trailing_zeros(typingctx, x):
    """How many of a uint64's lowest bits are zero (64 for 0): LLVM's ``cttz``, one instruction on x86."""
    if x != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.IntType(1)(0))

    return types.uint64(x), codegen


def _store_past_cache(builder, value, pointer):
    store = builder.store(value, pointer, align=64)
    store.set_metadata("nontemporal", builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)]))


@intrinsic
def stream_line(typingctx, dst, dst_index, src, src_index):
    """Copy the 64 bytes at ``&src[src_index]`` to ``&dst[dst_index]``, which must be 64-byte aligned, with a
    non-temporal store: the line goes to memory without being read into the cache first. Call ``store_fence`` before
    other threads read what was written."""
    if not (isinstance(dst, types.Array) and isinstance(src, types.Array)):
        return None

    def codegen(context, builder, signature, args):
        target, source = _line_pointers(context, builder, signature, args, ir.IntType(64))
        _store_past_cache(builder, builder.load(source, align=1), target)
        return context.get_dummy_value()

    return types.void(dst, dst_index, src, src_index), codegen


@intrinsic
def stream_scaled_line(typingctx, dst, dst_index, src, src_index, scale):
    """``stream_line`` of the 64 bytes at ``&src[src_index]`` times ``scale`` (float32 or float64 arrays)."""
    if not (isinstance(dst, types.Array) and isinstance(src, types.Array) and dst.dtype == src.dtype
            and isinstance(dst.dtype, types.Float)):
        return None

    def codegen(context, builder, signature, args):
        element = context.get_data_type(signature.args[0].dtype)
        target, source = _line_pointers(context, builder, signature, args, element)
        factor = context.cast(builder, args[4], signature.args[4], signature.args[0].dtype)
        count = target.type.pointee.count
        splat = builder.insert_element(ir.Constant(ir.VectorType(element, count), None), factor, ir.IntType(32)(0))
        splat = builder.shuffle_vector(splat, splat, ir.Constant(ir.VectorType(ir.IntType(32), count), [0] * count))
        _store_past_cache(builder, builder.fmul(builder.load(source, align=1), splat), target)
        return context.get_dummy_value()

    return types.void(dst, dst_index, src, src_index, scale), codegen


@intrinsic
def store_fence(typingctx):
    """Order this thread's non-temporal stores before its later memory accesses (a full fence: ``mfence`` on x86)."""

    def codegen(context, builder, signature, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return types.void(), codegen

"""Code-generation helpers for the CPU kernels that numba does not offer itself.

- ``stack_array(size, like)``: a 1-D array of a compile-time ``size`` on the stack, of ``like``'s dtype (``like`` is
  an array or a number). A kernel
  compiled for one table width (``bag._sum_pool``) keeps its accumulator in such an array; its size being a constant,
  LLVM holds it in vector registers for the whole bag, as fbgemm's generated kernels do.
- ``wide_vectors()``: lets LLVM vectorise the calling function with 512-bit registers. On AVX-512 CPUs LLVM prefers
  256-bit vectors by default (a guard against clock throttling on old Xeons); for sums of rows that are already in
  cache, twice the width is worth up to 1.3x. Without AVX-512 the attribute changes nothing.
- ``prefetch(array, index)``: a software prefetch of one element's cache line, for rows read in random order.

All are plain LLVM IR (an ``alloca``, a function attribute, an intrinsic call), so kernels using them still cache to disk.
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic
from numba.np.arrayobj import populate_array


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
        array_type, index_type = signature.args
        ary = context.make_array(array_type)(context, builder, args[0])
        indices = cgutils.unpack_tuple(builder, args[1]) if isinstance(index_type, types.BaseTuple) else [args[1]]
        pointer = cgutils.get_item_pointer(context, builder, array_type, ary, indices, wraparound=False)
        byte_pointer = builder.bitcast(pointer, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [byte_pointer.type, i32, i32, i32])
        fn = builder.module.declare_intrinsic("llvm.prefetch", fnty=fnty)
        builder.call(fn, [byte_pointer, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, index), codegen

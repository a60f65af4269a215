"""Borrowed arrays: the same data and shape without a reference count (``@intrinsic``).

Numba counts references on every array it passes into a function it inlines at the IR
level; inside a kernel's innermost loops those atomic ``NRT_incref``/``NRT_decref`` calls
can cost more than the loop's arithmetic (the first layer's 2x2 pool windows: 144 FMAs a
window, and 8 such calls). :func:`borrowed` gives a view of ``arr`` whose meminfo is null,
on which both calls return at once. The view holds no reference: it must not outlive
``arr`` (a kernel borrows its arguments and its own allocations for its loops, and
returns neither). Only callable from ``@njit`` code.
"""

from __future__ import annotations

from numba import types
from numba.core import cgutils
from numba.core.extending import intrinsic

__all__ = ["borrowed"]


@intrinsic
def borrowed(typingctx, arr):
    """``arr`` as a view without a reference count (module docstring)."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, sig, args):
        view = context.make_array(sig.args[0])(context, builder, value=args[0])
        view.meminfo = cgutils.get_null_value(view.meminfo.type)
        view.parent = cgutils.get_null_value(view.parent.type)
        return view._getvalue()

    return arr(arr), codegen

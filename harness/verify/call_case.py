"""One call of an op, given by its arguments, in the form the verifier's checks read.

The op table's reference and bounds take a *case* (``spec``, ``batched``, ``kwargs`` and a few
flags) and its arrays; a :class:`CallCase` is that, built from a user's own call instead of a
seeded case, so :func:`harness.testing.assert_close` judges one call exactly as the verifier
judges a case.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.ops.table import op_info


@dataclass(frozen=True)
class CallCase:
    """What :func:`harness.verify.verifier.expected_and_bounds` reads of a case."""

    spec: object
    batched: bool

    @property
    def dtype(self) -> str:
        return self.spec.dtype


def call_case(op: str, call: dict):
    """``(CallCase, arrays)`` for ``op`` called with the keyword arguments ``call``.

    The arrays are taken by the names of the op record's ``inputs``; the rest are the op's
    options, checked by its ``make_spec`` as the public function checks them.

    Raises
    ------
    ValueError, TypeError
        Unknown op, a missing array argument, or arguments the op refuses.
    """
    info = op_info(op)
    options = dict(call)
    arrays = [options.pop(name, None) for name in info.inputs]
    if arrays[0] is None or (len(info.inputs) > 1 and info.inputs[1] != "bias" and arrays[1] is None):
        raise TypeError(f"assert_close({op!r}) needs the call's arrays by name: {', '.join(info.inputs)}")
    spec, batched = info.make_spec(*arrays, **options)
    return CallCase(spec, batched), arrays

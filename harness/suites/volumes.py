"""Named-layer CSV suites of 3-D layers (video and volumetric networks).

The same format as the 2-D suites (see :mod:`harness.suites`), with a depth axis: columns
``name,N,C,D,H,W,O,KD,KH,KW,stride,padding,dilation,groups,op,notes``, where ``stride``,
``padding`` and ``dilation`` are ``k`` or ``dxhxw`` triples written ``1x2x2``. ``op`` is
``conv3d`` or ``conv_transpose3d`` (then ``C, D, H, W`` are the transposed conv's input and
``O`` its output channels). Each row becomes a :class:`harness.ops.conv_nd_spec.ConvNdSpec`;
the op records' ``from_layer`` turn it into the op's spec. 1-D layers need no format of their
own: a 2-D row of height 1 (``H = KH = 1``) is a 1-D layer.
"""

from __future__ import annotations

from harness.ops.conv_nd_spec import ConvNdSpec, checked_conv

VOLUME_COLUMNS = ("name", "N", "C", "D", "H", "W", "O", "KD", "KH", "KW", "stride", "padding", "dilation", "groups",
                  "op", "notes")


def triple(text: str) -> tuple[int, int, int]:
    """``k`` or ``dxhxw`` as a (depth, height, width) triple."""
    parts = text.strip().lower().split("x")
    if len(parts) == 1:
        return (int(parts[0]),) * 3
    if len(parts) == 3:
        return int(parts[0]), int(parts[1]), int(parts[2])
    raise ValueError(f"expected k or dxhxw, got {text!r}")


def parse_volume_rows(reader, path, prefix: str) -> list[tuple]:
    """``(label, op, spec, notes, batch)`` per data row of a 3-D CSV suite (``reader``: a csv.DictReader)."""
    rows, labels = [], set()
    for lineno, row in enumerate(reader, start=2):
        try:
            label = f"{prefix}.{row['name'].strip()}"
            if label in labels:
                raise ValueError(f"duplicate layer name {row['name']!r}")
            labels.add(label)
            spec = checked_conv(ConvNdSpec(
                N=1, C=int(row["C"]), O=int(row["O"]), size=(int(row["D"]), int(row["H"]), int(row["W"])),
                kernel=(int(row["KD"]), int(row["KH"]), int(row["KW"])), stride=triple(row["stride"]),
                padding=tuple((p, p) for p in triple(row["padding"])), dilation=triple(row["dilation"]),
                groups=int(row["groups"] or 1)))
            batch = int(row["N"]) if row["N"].strip() else None
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}, data row {lineno - 1}: {exc}") from None
        rows.append((label, row["op"].strip() or "conv3d", spec, row["notes"].strip(), batch))
    return rows

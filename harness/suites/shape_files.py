"""Read other tools' conv shape files, so a user's existing files run unchanged.

Two notations besides convbench's own CSV suites (see :mod:`harness.suites`):

* **oneDNN benchdnn** problem descriptors, one per line, e.g.
  ``g1mb50ic3ih224iw224oc64oh112ow112kh7kw7sh2sw2ph3pw3n"resnet_50:conv1"``. Keys may come
  in any order and ``_`` separators are ignored; ``n`` starts the name, which runs to the
  end of the line. benchdnn's defaults apply: ``g=1``, ``mb=2``, stride 1, dilation 0
  (benchdnn counts *extra* spacing, so its ``d`` is torch's ``d + 1``), missing width
  values take the height's (square problems), a missing output size is computed with
  padding 0 where padding is missing, and missing padding is deduced from a given output
  size. The bottom/right padding is what makes the output exactly ``oh``/``ow`` (benchdnn's
  rule); when symmetric padding gives the same output, it is used instead so no backend
  needs asymmetric padding for nothing.
* **DeepBench** tuples ``(w, h, c, n, k, filter_w, filter_h, pad_w, pad_h, wstride, hstride)``,
  one per line, in any wrapping (``std::make_tuple(...)``, bare parentheses, or plain
  comma-separated numbers).

``#`` and ``//`` start comments in both. Rows come back as :class:`harness.suites.Row`,
carrying the batch the file gives.
"""

from __future__ import annotations

import csv
import re
from typing import NamedTuple
from pathlib import Path

from harness.ops.conv_spec import Conv2dSpec
from harness.suites.volumes import VOLUME_COLUMNS, parse_volume_rows

#: Columns of a named-layer CSV suite (see ``harness/suites``).
CSV_COLUMNS = ("name", "N", "C", "H", "W", "O", "KH", "KW", "stride", "padding", "dilation", "groups", "op", "notes")


class Row(NamedTuple):
    """One row of a shape file: ``batch`` is the file's own batch, or None if it leaves it open."""

    label: str
    op: str
    spec: Conv2dSpec
    notes: str
    batch: int | None



_UNSUPPORTED_KEYS = ("id", "od", "kd", "sd", "pd", "dd")
# Longest keys first so "mb" is not read as "m" + "b" and "ic" before "i".
_KEY_RE = re.compile(r"(mb|ic|ih|iw|id|oc|oh|ow|od|kh|kw|kd|sh|sw|sd|ph|pw|pd|dh|dw|dd|g)(\d+)")
_INT_RE = re.compile(r"-?\d+")


def read_rows(path, prefix: str | None = None):
    """Rows of a shape file in any supported notation, told apart by content.

    Parameters
    ----------
    path : str or Path
        A convbench CSV suite (``.csv``), a benchdnn descriptor file, or a DeepBench
        tuple file.
    prefix : str, optional
        Label prefix (default: the file's stem).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"shape file {path} does not exist")
    prefix = prefix or path.stem
    if path.suffix == ".csv":
        return parse_csv_rows(path, prefix)
    lines = _content_lines(path.read_text())
    if not lines:
        raise ValueError(f"shape file {path} has no shapes (only comments or blank lines)")
    parse = parse_deepbench_line if _looks_like_deepbench(lines[0][1]) else parse_benchdnn
    rows, used = [], set()
    for number, (lineno, line) in enumerate(lines, start=1):
        try:
            name, spec, batch = parse(line)
        except ValueError as exc:
            raise ValueError(f"{path}:{lineno}: {exc}") from None
        label = _unique(f"{prefix}.{name or f'{number:03d}_' + _short(spec)}", used)
        rows.append(_row(label, spec, batch))
    return rows


def parse_benchdnn(descriptor: str) -> tuple[str, Conv2dSpec, int]:
    """One benchdnn conv descriptor -> ``(name, spec with N=mb, mb)``.

    >>> name, spec, mb = parse_benchdnn('mb50ic3ih224oc64oh112kh7sh2ph3n"resnet_50:conv1"')
    >>> name, spec.x_shape, spec.w_shape, spec.out_shape, spec.padding
    ('resnet_50:conv1', (50, 3, 224, 224), (64, 3, 7, 7), (50, 64, 112, 112), (3, 3, 3, 3))
    """
    text = descriptor.strip()
    name = ""
    body, sep, tail = text.partition("n")
    # 'n' only starts the name outside a key; the keys containing 'n' do not exist, so the
    # first 'n' is the name marker.
    if sep:
        name = _name(tail.strip())
    body = body.replace("_", "")
    values, pos = {}, 0
    for match in _KEY_RE.finditer(body):
        if match.start() != pos:
            raise ValueError(f"unrecognised text {body[pos:match.start()]!r} in descriptor {text!r}")
        key, value = match.group(1), int(match.group(2))
        if key in _UNSUPPORTED_KEYS:
            raise ValueError(f"descriptor {text!r} is a 3-D problem ({key}); convbench runs 2-D convolutions")
        values[key] = value
        pos = match.end()
    if pos != len(body):
        raise ValueError(f"unrecognised text {body[pos:]!r} in descriptor {text!r}")
    for key in ("ic", "oc", "ih", "kh"):
        if key not in values:
            raise ValueError(f"descriptor {text!r} lacks {key}")
    _check_values(values, text)
    g, mb = values.get("g", 1), values.get("mb", 2)
    if g < 1 or values["ic"] % g or values["oc"] % g:
        raise ValueError(f"descriptor {text!r}: g={g} must divide ic={values['ic']} and oc={values['oc']}")
    height = _axis(values, "h")
    width = _axis(_with_width(values), "w")
    spec = Conv2dSpec.from_shapes(
        (mb, values["ic"], height["i"], width["i"]),
        (values["oc"], values["ic"] // g, height["k"], width["k"]),
        stride=(height["s"], width["s"]),
        dilation=(height["d"], width["d"]),
        groups=g,
    ).with_(padding=height["pads"] + width["pads"])
    if (spec.OH, spec.OW) != (height["o"], width["o"]):
        raise ValueError(f"descriptor {text!r}: padding gives output {spec.OH}x{spec.OW}, not {height['o']}x{width['o']}")
    return name, spec, mb


# keys that count something (or step by it): 0 is meaningless there (sh0 would divide by zero)
_AT_LEAST_ONE = ("g", "mb", "ic", "ih", "iw", "oc", "oh", "ow", "kh", "kw", "sh", "sw")
_MAX_VALUE = 2**31 - 1  # benchdnn's own sizes are int; a larger one is a typo, not a problem size


def _check_values(values: dict, text: str) -> None:
    """Each benchdnn value in range: counts and strides >= 1, nothing beyond ``2**31 - 1``."""
    for key, value in values.items():
        if value > _MAX_VALUE:
            raise ValueError(f"descriptor {text!r}: {key}={value} is too large (at most {_MAX_VALUE})")
        if key in _AT_LEAST_ONE and value < 1:
            raise ValueError(f"descriptor {text!r}: {key} must be at least 1, got {key}{value}")


def _name(tail: str) -> str:
    """The problem name after ``n``: a quoted string, or the text up to the first space."""
    if tail[:1] in ('"', "'"):
        end = tail.find(tail[0], 1)
        return tail[1:end] if end > 0 else tail[1:]
    return tail.split()[0] if tail else ""


def _with_width(values: dict) -> dict:
    """benchdnn's square rule: a problem that gives no width values takes all the height's.

    When some width values are given, a missing ``iw`` or ``kw`` still takes the height's
    (benchdnn would refuse the line); the rest keep benchdnn's defaults.
    """
    given_width = any(key in values for key in ("iw", "ow", "kw", "sw", "pw", "dw"))
    copied = dict(values)
    pairs = (("ih", "iw"), ("kh", "kw")) if given_width else (
        ("ih", "iw"), ("oh", "ow"), ("kh", "kw"), ("sh", "sw"), ("ph", "pw"), ("dh", "dw"))
    for h_key, w_key in pairs:
        if h_key in values and w_key not in values:
            copied[w_key] = values[h_key]
    return copied


def _axis(source: dict, axis: str) -> dict:
    """Input, kernel, stride, torch dilation, output and (before, after) padding of one axis."""
    i, k = source.get(f"i{axis}"), source.get(f"k{axis}")
    if not i or not k:
        raise ValueError(f"needs both i{axis} and k{axis} (got i{axis}={i}, k{axis}={k})")
    s, d = source.get(f"s{axis}", 1), source.get(f"d{axis}", 0)
    extent = (k - 1) * (d + 1) + 1
    p, o = source.get(f"p{axis}"), source.get(f"o{axis}")
    if o is None:
        p = 0 if p is None else p
        o = (i - extent + 2 * p) // s + 1
    elif p is None:
        p = ((o - 1) * s - i + extent) // 2
    if o < 1 or p < 0:
        raise ValueError(f"axis {axis}: output {o} / padding {p} are not possible for i={i}, k={k}, s={s}")
    after = (o - 1) * s - i + extent - p  # benchdnn's right padding: output exactly o
    if (i + 2 * p - extent) // s + 1 == o:
        after = p  # symmetric padding gives the same output: prefer it
    elif after < 0:
        raise ValueError(f"axis {axis}: padding {p} cannot give output {o} for i={i}, k={k}, s={s}")
    return {"i": i, "k": k, "s": s, "d": d + 1, "o": o, "pads": (p, after)}


def parse_deepbench_line(line: str) -> tuple[str, Conv2dSpec, int]:
    """One DeepBench tuple ``(w, h, c, n, k, filter_w, filter_h, pad_w, pad_h, wstride, hstride)``.

    >>> _, spec, n = parse_deepbench_line("std::make_tuple(700, 161, 1, 4, 32, 20, 5, 0, 0, 2, 2),")
    >>> spec.x_shape, spec.w_shape, spec.stride, n
    ((4, 1, 161, 700), (32, 1, 5, 20), (2, 2), 4)
    """
    numbers = [int(v) for v in _INT_RE.findall(line)]
    if len(numbers) != 11:
        raise ValueError(
            f"expected 11 numbers (w, h, c, n, k, filter_w, filter_h, pad_w, pad_h, wstride, hstride), "
            f"got {len(numbers)} in {line.strip()!r}"
        )
    w, h, c, n, k, fw, fh, pw, ph, sw, sh = numbers
    if max(numbers) > _MAX_VALUE:
        raise ValueError(f"a value in {line.strip()!r} is too large (at most {_MAX_VALUE})")
    if min(n, w, h, c, k, fw, fh, sw, sh) < 1:
        raise ValueError(f"sizes and strides must be at least 1 in {line.strip()!r}")
    spec = Conv2dSpec.from_shapes((n, c, h, w), (k, c, fh, fw), stride=(sh, sw), padding=(ph, pw))
    return "", spec, n


def _looks_like_deepbench(line: str) -> bool:
    return len(_INT_RE.findall(line)) == 11 and not _KEY_RE.search(line.replace("_", ""))


def _content_lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) of non-blank lines with # and // comments removed."""
    out = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("//")[0]
        if not line.lstrip().startswith("#"):
            line = line.split("#")[0] if '"' not in line else line
        else:
            line = ""
        if line.strip().rstrip(",;").strip("{}() \t"):
            out.append((lineno, line.strip()))
    return out


def _short(spec: Conv2dSpec) -> str:
    return f"c{spec.C}h{spec.H}w{spec.W}k{spec.O}f{spec.KH}x{spec.KW}s{spec.stride[0]}"


def _unique(label: str, used: set) -> str:
    base, n = label, 2
    while label in used:
        label, n = f"{base}~{n}", n + 1
    used.add(label)
    return label


def _row(label, spec, batch):
    return Row(label, "conv2d", spec.with_(N=1), "", batch)


def parse_csv_rows(path: Path, prefix: str):
    """The :class:`Row` s of a named-layer CSV suite."""
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    reader = csv.DictReader(lines)
    if tuple(reader.fieldnames or ()) == VOLUME_COLUMNS:  # 3-D layers (harness/suites/volumes.py)
        return [Row(*row) for row in parse_volume_rows(reader, path, prefix)]
    if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
        raise ValueError(f"{path}: expected columns {','.join(CSV_COLUMNS)}, got {reader.fieldnames}")
    rows, labels = [], set()
    for lineno, row in enumerate(reader, start=2):
        try:
            label = f"{prefix}.{row['name'].strip()}"
            if label in labels:
                raise ValueError(f"duplicate layer name {row['name']!r}")
            labels.add(label)
            kh, kw = int(row["KH"]), int(row["KW"])
            spec = Conv2dSpec(
                N=1, C=int(row["C"]), H=int(row["H"]), W=int(row["W"]), O=int(row["O"]), KH=kh, KW=kw,
                stride=_pair(row["stride"]), padding=_pads(row["padding"]),
                dilation=_pair(row["dilation"]), groups=int(row["groups"] or 1),
            ).with_()  # with_() re-validates
            own_batch = int(row["N"]) if row["N"].strip() else None
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}, data row {lineno - 1}: {exc}") from None
        rows.append(Row(label, row["op"].strip() or "conv2d", spec, row["notes"].strip(), own_batch))
    return rows


def _pads(text: str) -> tuple[int, int, int, int]:
    """A CSV ``padding`` cell as ``(top, bottom, left, right)``: ``k``, ``hxw``, or per side
    ``top:bottom`` (both axes) or ``top:bottomxleft:right`` (e.g. ``0:1x1:0``)."""
    if ":" not in text:
        ph, pw = _pair(text)
        return (ph, ph, pw, pw)
    axes = text.strip().lower().split("x")
    if len(axes) == 1:
        axes = axes * 2
    sides = [axis.split(":") for axis in axes]
    if len(sides) != 2 or any(len(side) != 2 for side in sides):
        raise ValueError(f"expected per-side padding top:bottom or top:bottomxleft:right, got {text!r}")
    pads = tuple(int(v) for side in sides for v in side)
    if min(pads) < 0:
        raise ValueError(f"padding must be non-negative, got {text!r}")
    return pads


def _pair(text: str) -> tuple[int, int]:
    parts = text.strip().lower().split("x")
    if len(parts) == 1:
        return int(parts[0]), int(parts[0])
    if len(parts) == 2:
        return int(parts[0]), int(parts[1])
    raise ValueError(f"expected k or hxw, got {text!r}")

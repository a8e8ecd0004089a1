"""Writing results so that nothing is ever half-written: temp file in the same folder + rename."""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

#: Where every generated result lands (relative to the working directory): verification and
#: benchmark CSVs, histories, the machine record, the report. One place to change it.
REPORTS = Path("reports")


def write_atomic(path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` atomically: readers see the old file or the new, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates the file 0600; an artefact gets what open() would give: 0666 less the umask
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    # the umask can only be read by setting it; set it straight back
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_csv(frame, path) -> Path:
    """CSV at full precision, written atomically, with the ``git_commit`` and ``git_dirty`` of
    the code that produced it (:func:`harness.support.provenance.git_state`) on every row."""
    from harness.support.provenance import stamp

    if "git_commit" not in frame:
        frame = stamp(frame)
    return write_atomic(path, frame.to_csv(index=False, float_format="%.17g"))


def append_records(path, records) -> Path:
    """Append records (dicts) as JSON lines, in one write, to an append-only history file.

    Earlier runs are never rewritten. If a previous writer died mid-line, that partial line
    (never a complete record) is cut off first, so the new records start on a line of their own.
    Cutting and appending hold an exclusive ``flock`` on the file, so concurrent writers (several
    processes appending to one history) never cut each other's records.
    """
    import json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = "".join(json.dumps(r, default=str, allow_nan=True) + "\n" for r in records).encode()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
    try:
        # an advisory lock over cut-then-append: otherwise a writer can cut the line another
        # writer has just appended (it looks like a partial tail until its newline lands)
        fcntl.flock(fd, fcntl.LOCK_EX)
        _cut_partial_tail(fd)
        view = memoryview(blob)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def _cut_partial_tail(fd: int) -> None:
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    chunk = min(size, 1 << 20)
    tail = os.pread(fd, chunk, size - chunk)
    last_newline = tail.rfind(b"\n")
    os.ftruncate(fd, size - chunk + last_newline + 1 if last_newline >= 0 else 0)


def read_records(path, allow_truncated: bool = False) -> list[dict]:
    """Records from a JSON-lines history; a truncated last line is an error unless allowed."""
    import json

    path = Path(path)
    data = path.read_bytes()
    lines = data.split(b"\n")
    complete, tail = lines[:-1], lines[-1]
    records = []
    for number, line in enumerate(complete, start=1):
        try:
            record = json.loads(line)
        except ValueError:
            raise ValueError(f"{path}: line {number} is not a valid record; the file is corrupt") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}: line {number} is not a record (a JSON object); the file is corrupt")
        records.append(record)
    if tail:
        if not allow_truncated:
            raise ValueError(
                f"{path}: the last record (line {len(complete) + 1}) is truncated — the run writing it was "
                f"interrupted; the {len(records)} complete records before it are intact "
                "(read them with allow_truncated=True)"
            )
    return records


class RunHistory:
    """One run's results, appended as they finish to ``<out>-history.jsonl`` (tagged with a run
    id), so that an interrupted run can still write every finished row to ``out``."""

    def __init__(self, out, columns=None):
        import time

        self.out = Path(out)
        self.path = self.out.with_name(self.out.stem + "-history.jsonl")
        self.run_id = time.strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}"
        self.columns = columns
        self.rows: list[dict] = []

    def add(self, rows) -> None:
        """Keep finished rows (dicts): in memory, and appended to the history at once."""
        from harness.support.provenance import git_state

        rows = list(rows)
        self.rows.extend(rows)
        append_records(self.path, [dict(row, run=self.run_id, **git_state()) for row in rows])

    def save_finished(self) -> Path:
        """Write the rows finished so far to ``out`` (atomically), e.g. after Ctrl-C."""
        import pandas as pd  # here: `import harness` stays free of pandas (the pytest plug-in loads it)

        return write_csv(pd.DataFrame(self.rows, columns=self.columns), self.out)

"""Reading a results CSV that may not be one: a missing file, a directory, an empty or
binary file, a CSV without the columns a command needs, or one whose last line was cut
by an interrupted write each give one `BadInput` line naming the file and the problem
(the CLI prints it and exits 2), never a traceback or a silently wrong table."""

from __future__ import annotations

import csv
import io
from pathlib import Path


class BadInput(ValueError):
    """A file a command cannot use; the message names the file and what is wrong."""


def read_text(path: str | Path, needed: tuple[str, ...]) -> str:
    """The text of results CSV ``path``, checked: readable text, a header holding every
    column of ``needed``, at least one row, and every line as long as the header."""
    path = Path(path)
    if not path.exists():
        raise BadInput(f"{path}: no such file")
    if path.is_dir():
        raise BadInput(f"{path}: is a directory, not a results CSV")
    data = path.read_bytes()
    if not data.strip():
        raise BadInput(f"{path}: is empty")
    nul = data.find(b"\0", 0, 65536)
    if nul >= 0:
        raise BadInput(f"{path}: is binary data (a NUL byte at offset {nul}), not a results CSV")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: is not UTF-8 text (byte {exc.start}), not a results CSV") from None
    try:
        lines = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise BadInput(f"{path}: is not a CSV ({exc})") from None
    header = lines[0]
    missing = [c for c in needed if c not in header]
    if missing:
        raise BadInput(f"{path}: lacks column(s) {', '.join(missing)}: not a structbench results CSV")
    rows = [(number, fields) for number, fields in enumerate(lines[1:], 2) if fields]
    if not rows:
        raise BadInput(f"{path}: has a header but no rows")
    for number, fields in rows:
        if len(fields) != len(header):
            last = number == rows[-1][0]
            what = "its last line is truncated" if last and len(fields) < len(header) else f"line {number} is malformed"
            raise BadInput(f"{path}: {what} (line {number} has {len(fields)} of {len(header)} fields"
                           + ("; an interrupted write? remove that line" if last else "") + ")")
    return text

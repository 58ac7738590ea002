"""The only module that reads and writes files.

Every write is atomic: the content goes to a temporary file in the destination folder, is
flushed to disk, then renamed over the final name with :func:`os.replace`. A crash leaves
either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from pipeline.errors import ConfigError, InputError

logger = logging.getLogger(__name__)

PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".joblib", ".sav", ".dill"})


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` if the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs (reports, tables) are meant to be shared
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_text_chunks(path: str | Path, chunks: Iterable[str]) -> Path:
    """Write UTF-8 text produced piece by piece (bounded memory) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            for chunk in chunks:
                handle.write(chunk)
    return Path(path)


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON (stable bytes for DVC and diffs)."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default, allow_nan=False)
    return write_text(path, text + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_json(path: str | Path) -> Any:
    """Read a JSON file, with a one-line error when it is missing or invalid."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"{path}: file not found") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from exc


def read_yaml(path: str | Path) -> Any:
    """Read YAML with ``safe_load`` only; python tags and syntax errors become ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{where}: invalid YAML ({problem})") from exc


def write_parquet(path: str | Path, frame: pd.DataFrame) -> Path:
    """Write ``frame`` to Parquet atomically, without the pandas index."""
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False, engine="pyarrow", compression="zstd")
    return Path(path)


def write_parquet_frames(path: str | Path, frames: Iterable[pd.DataFrame]) -> int:
    """Write frames of one schema as consecutive row groups of one Parquet file, atomically.

    Only one frame is in memory at a time (a panel larger than memory can be written). Returns
    the number of rows written; at least one frame is required (it gives the schema).
    """
    import pyarrow.parquet as pq

    rows = 0
    with atomic_path(path) as tmp:
        writer = None
        try:
            for frame in frames:
                table = pa_table(frame)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
                writer.write_table(table)
                rows += len(frame)
            if writer is None:
                raise ValueError(f"{path}: no frames to write")
        finally:
            if writer is not None:
                writer.close()
    return rows


def read_parquet(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a Parquet file, with a one-line error when it is missing or not Parquet."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    try:
        return pd.read_parquet(path, columns=columns, engine="pyarrow")
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from exc


def write_csv(path: str | Path, frame: pd.DataFrame) -> Path:
    """Write ``frame`` to CSV atomically, neutralising spreadsheet formulas in text cells."""
    with atomic_path(path) as tmp:
        neutralise_formulas(frame).to_csv(tmp, index=False)
    return Path(path)


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells that a spreadsheet would run as a formula with a single quote (OWASP)."""
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if not (pd.api.types.is_string_dtype(series) or series.dtype == object):
            continue
        text = series.astype("string")
        risky = text.str.startswith(FORMULA_PREFIXES).fillna(False)
        if risky.any():
            out[column] = text.mask(risky, "'" + text)
    return out


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Return the SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def open_binary(path: str | Path) -> Any:
    """Open a file for reading bytes, decompressing ``.gz`` transparently."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return open(path, "rb")


def refuse_pickle(path: str | Path) -> None:
    """Raise if ``path`` is a pickle-like file: only LightGBM text and JSON are ever loaded."""
    from pipeline.errors import ModelError

    if Path(path).suffix.lower() in PICKLE_SUFFIXES:
        raise ModelError(
            f"{path}: refusing to load a pickle/joblib file; models are LightGBM text + JSON"
        )


def resolve_output(out: str | Path, inputs: Sequence[str | Path]) -> Path:
    """Resolve ``out`` and refuse it when it would overwrite one of ``inputs``."""
    target = Path(out).resolve()
    for item in inputs:
        if Path(item).resolve() == target:
            raise InputError(f"{out}: output path is also an input; refusing to overwrite it")
    return target


def as_mapping(obj: Any, path: str | Path) -> Mapping[str, Any]:
    """Check that a parsed YAML/JSON document is a mapping."""
    if not isinstance(obj, Mapping):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(obj).__name__}")
    return obj


class PartWriters:
    """Append raw records to one scratch part file per partition (used by the partitioner).

    Not atomic: part files live in a scratch folder that the caller deletes on failure. Each
    part file gets a sidecar (``line_paths``) of int64 original line numbers, one per line.
    Writes are buffered so that the number of system calls does not grow with the records.
    """

    def __init__(
        self, paths: list[Path], line_paths: list[Path], flush_bytes: int = 8 << 20
    ) -> None:
        import array

        self.paths = paths
        self.line_paths = line_paths
        self.flush_bytes = flush_bytes
        self._buffers: list[list[bytes]] = [[] for _ in paths]
        self._numbers = [array.array("q") for _ in paths]
        self._pending = 0
        self._handles: list[Any] = []
        self._line_handles: list[Any] = []

    def __enter__(self) -> PartWriters:
        for path, lines in zip(self.paths, self.line_paths, strict=True):
            path.parent.mkdir(parents=True, exist_ok=True)
            lines.parent.mkdir(parents=True, exist_ok=True)
            self._handles.append(open(path, "wb"))  # noqa: SIM115 - closed in __exit__
            self._line_handles.append(open(lines, "wb"))  # noqa: SIM115
        return self

    def write_header(self, header: bytes) -> None:
        """Write the same header line to every part file."""
        for handle in self._handles:
            handle.write(header)

    def write(self, part: int, record: bytes, line_numbers: range) -> None:
        """Buffer one raw record for partition ``part`` with its original line numbers."""
        self._numbers[part].extend(line_numbers)
        self._buffer(part, record)

    def write_line(self, part: int, line: bytes, line_number: int) -> None:
        """Buffer one single-line record (the common case of :meth:`write`, no range built)."""
        self._numbers[part].append(line_number)
        self._buffer(part, line)

    def _buffer(self, part: int, data: bytes) -> None:
        self._buffers[part].append(data)
        self._pending += len(data)
        if self._pending >= self.flush_bytes:
            self.flush()

    def flush(self) -> None:
        """Write every buffer out."""
        for part, buffer in enumerate(self._buffers):
            if buffer:
                self._handles[part].write(b"".join(buffer))
                buffer.clear()
            if self._numbers[part]:
                self._numbers[part].tofile(self._line_handles[part])
                del self._numbers[part][:]
        self._pending = 0

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.flush()
        finally:
            for handle in self._handles + self._line_handles:
                handle.close()


def read_line_numbers(path: str | Path) -> Any:
    """Read an int64 line-number sidecar written by :class:`PartWriters`."""
    import numpy as np

    return np.fromfile(path, dtype=np.int64)


@contextlib.contextmanager
def scratch_dir(near: str | Path) -> Iterator[Path]:
    """Yield a fresh scratch folder next to ``near`` (same file system); removed afterwards."""
    import shutil

    parent = Path(near).parent
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{Path(near).name}.work-", dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def concat_parquet_parts(path: str | Path, parts: list[Path], fmt: str = "parquet") -> int:
    """Write the rows of Parquet ``parts`` (in order) to ``path`` atomically; return the rows.

    One part at a time is in memory. ``fmt="csv"`` writes CSV with spreadsheet formulas
    neutralised; ``"parquet"`` writes one row group per part.
    """
    import pyarrow.parquet as pq

    if not parts:
        raise ValueError("no parts to concatenate")
    rows = 0
    with atomic_path(path) as tmp:
        writer: Any = None
        try:
            for index, part in enumerate(parts):
                frame = read_parquet(part)
                rows += len(frame)
                if fmt == "csv":
                    neutralise_formulas(frame).to_csv(
                        tmp, index=False, mode="w" if index == 0 else "a", header=index == 0
                    )
                    continue
                table = pa_table(frame)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
    return rows


def pa_table(frame: pd.DataFrame) -> Any:
    """Convert a frame to a pyarrow Table without its index."""
    import pyarrow as pa

    return pa.Table.from_pandas(frame, preserve_index=False)


def to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    """Serialise a frame to Parquet bytes (how the Spark engine moves a partition's tables)."""
    import io as _io

    buffer = _io.BytesIO()
    frame.to_parquet(buffer, index=False, engine="pyarrow")
    return buffer.getvalue()


def from_parquet_bytes(data: bytes) -> pd.DataFrame:
    """Read a frame back from :func:`to_parquet_bytes` output."""
    import io as _io

    return pd.read_parquet(_io.BytesIO(data), engine="pyarrow")


def refuse_inside(out: str | Path, inputs: Sequence[str | Path]) -> Path:
    """Refuse ``out`` when it is an input or lies inside an input folder; return it resolved."""
    target = resolve_output(out, inputs)
    for item in inputs:
        folder = Path(item).resolve()
        if folder.is_dir() and target.is_relative_to(folder):
            raise InputError(f"{out}: output path is inside input folder {item}; refusing it")
    return target

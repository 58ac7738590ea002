"""The only module that reads and writes files.

Every write is atomic, file by file and as a set:

- a file (:func:`atomic_path`) goes to a temporary sibling, is flushed to disk, then renamed
  over its final name with :func:`os.replace`: a crash leaves the old file or the new one;
- a stage's output folder (:func:`atomic_folder`) is built whole in a temporary sibling
  ``.NAME.tmp-XXXX`` and swapped in for the old one: a reader sees the old complete set or the
  new complete set, never a mix, whatever fails (crash, kill, full disk);
- a set of files in a folder other writers share (``loyalty score``'s output and manifest,
  :func:`atomic_files`) is written whole to temporary siblings before the first rename.

A full disk, a quota, a read-only file system becomes one line, ``OutputError``: "no space left
on device writing PATH", naming the final output (:func:`writing`).
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import gzip
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from pipeline.errors import ConfigError, InputError, OutputError

logger = logging.getLogger(__name__)

PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".joblib", ".sav", ".dill"})


# What the system says when an output cannot be written, in the words of the error line. Only
# these become an OutputError: reading an input never fails with them, so a block of work that
# writes may be wrapped whole (a permission problem is named where the output is created).
WRITE_FAILURES = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
}
CREATE_FAILURES = {
    **WRITE_FAILURES,
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


def output_error(
    exc: OSError, path: str | Path, failures: Mapping[int, str] = WRITE_FAILURES
) -> OutputError | None:
    """Return the one-line error for ``exc`` raised writing ``path`` (None: not a write failure)."""
    reason = failures.get(exc.errno) if exc.errno is not None else None
    return None if reason is None else OutputError(reason, str(path))


@contextlib.contextmanager
def writing(path: str | Path, failures: Mapping[int, str] = WRITE_FAILURES) -> Iterator[None]:
    """Turn a full disk (quota, read-only file system) inside the block into ``OutputError``."""
    try:
        yield
    except OSError as exc:
        error = output_error(exc, path, failures)
        if error is None:
            raise
        raise error from exc


@contextlib.contextmanager
def _naming(temporary: Path, final: Path, inside: bool = True) -> Iterator[None]:
    """Name the final output, not a temporary one, in an ``OutputError`` from the block.

    A path in (or equal to) ``temporary`` becomes the same path in ``final`` (``inside``), or
    ``final`` itself (a scratch folder: its files are not outputs).
    """
    try:
        yield
    except OutputError as exc:
        failed = Path(exc.path)
        if not failed.is_relative_to(temporary):
            raise
        named = final / failed.relative_to(temporary) if inside else final
        raise OutputError(exc.reason, str(named)) from exc


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` if the block succeeds."""
    final = Path(path)
    with writing(final, CREATE_FAILURES):
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with writing(final):
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs (reports, tables) are shared
            yield tmp
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def _sync_folder(folder: Path) -> None:
    """Flush a folder's entries (the names of renamed files) to disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _siblings(final: Path, kind: str) -> list[Path]:
    """List the temporary siblings of ``final`` of ``kind`` (tmp, trash, work), oldest first."""
    if not final.parent.is_dir():
        return []
    prefix = f".{final.name}.{kind}-"
    found = [p for p in final.parent.iterdir() if p.name.startswith(prefix)]
    return sorted(found, key=lambda p: p.lstat().st_mtime_ns)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def recover(final: str | Path) -> None:
    """Finish or undo a swap a crash interrupted, and remove stale temporary siblings.

    A swap renames the old folder to ``.NAME.trash-XXXX``, then the new one into place. A crash
    between the two renames leaves no folder under the final name: the old complete set is put
    back (its run did not finish). Temporary siblings of runs that died are removed. Two runs
    must not write the same output at once (DVC locks the project; a second run would remove the
    first one's temporary folder).
    """
    final = Path(final)
    trash = _siblings(final, "trash")
    if trash and not os.path.lexists(final):
        os.rename(trash.pop(), final)
        logger.warning("%s: restored the previous complete output (a run was interrupted)", final)
    for stale in [*trash, *_siblings(final, "tmp"), *_siblings(final, "work")]:
        _remove(stale)


def check_replaceable(path: str | Path, owns: Sequence[str]) -> None:
    """Refuse to replace ``path`` unless it is absent or holds only files matching ``owns``.

    ``owns`` are the glob patterns of the files the stage writes there: a mistyped ``--out``
    (a home folder, a project root) is an error, never swapped away with the user's files.
    """
    final = Path(path)
    if not os.path.lexists(final):
        return
    if not final.is_dir():
        raise InputError(f"{final}: exists and is not a folder; choose a folder for the output")
    foreign = sorted(
        entry.name
        for entry in final.iterdir()
        if entry.is_dir() or not any(fnmatch.fnmatchcase(entry.name, p) for p in owns)
    )
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise InputError(
            f"{final}: holds {shown}, which this stage does not write; refusing to replace the "
            "folder (choose a new or empty output folder)"
        )


@contextlib.contextmanager
def atomic_folder(path: str | Path, owns: Sequence[str]) -> Iterator[Path]:
    """Yield an empty temporary sibling of folder ``path``; swap it in whole if the block succeeds.

    Build every file of the stage's output in the yielded folder (with the usual writers). On
    success the old folder is renamed to a trash sibling, the new one renamed into place and the
    trash removed; on any failure the temporary folder is removed and the old one is untouched.
    ``path`` may be absent (DVC deletes a stage's outputs before running it). ``owns``: the file
    patterns the stage writes, see :func:`check_replaceable`. A full disk names the final file.
    """
    final = Path(path)
    if final.name in ("", ".", ".."):
        final = final.resolve()
    check_replaceable(final, owns)
    with writing(final, CREATE_FAILURES):
        final.parent.mkdir(parents=True, exist_ok=True)
        recover(final)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        with _naming(tmp, final), writing(final):
            os.chmod(tmp, 0o755)  # mkdtemp makes 0700
            yield tmp
            _sync_folder(tmp)
            _swap(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _swap(tmp: Path, final: Path) -> None:
    """Put folder ``tmp`` in place of ``final`` (which may be absent) with two renames."""
    trash = None
    if os.path.lexists(final):
        trash = Path(tempfile.mkdtemp(prefix=f".{final.name}.trash-", dir=final.parent))
        os.rename(final, trash)  # over the empty folder mkdtemp made: a unique name
    # A crash here leaves no final folder and a trash one: recover() puts the old set back.
    try:
        os.rename(tmp, final)
    except OSError:
        if trash is not None:
            os.rename(trash, final)
        raise
    _sync_folder(final.parent)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


@contextlib.contextmanager
def atomic_files(*paths: str | Path) -> Iterator[list[Path]]:
    """Yield a temporary sibling for each of ``paths``; rename each over its path on success.

    For a set of files in a folder that other writers share (``loyalty score --out`` may be any
    folder): every byte is written before the first rename, so a full disk or a failure leaves the
    old set; the renames need no space. Only a kill between the renames (back-to-back system
    calls) can leave a new file next to an old one. A path the block did not create is left
    as it is.
    """
    finals = [Path(p) for p in paths]
    temps: list[Path] = []
    try:
        for final in finals:
            with writing(final, CREATE_FAILURES):
                final.parent.mkdir(parents=True, exist_ok=True)
                recover(final)
                fd, name = tempfile.mkstemp(prefix=f".{final.name}.tmp-", dir=final.parent)
            os.close(fd)
            os.unlink(name)  # a free name: the writers create (and atomically fill) it
            temps.append(Path(name))
        with contextlib.ExitStack() as stack:
            for tmp, final in zip(temps, finals, strict=True):
                stack.enter_context(_naming(tmp, final))
            stack.enter_context(writing(finals[0]))
            yield temps
        for tmp, final in zip(temps, finals, strict=True):
            if os.path.lexists(tmp):
                os.replace(tmp, final)
        if finals:
            _sync_folder(finals[0].parent)
    finally:
        for tmp in temps:
            if os.path.lexists(tmp):
                _remove(tmp)


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


#: Significant digits of the metrics and curves git tracks: another machine's BLAS moves a
#: fitted baseline in the 12th digit, and a fresh clone's ``make run`` must leave git clean.
METRIC_DIGITS = 6


def significant(obj: Any, digits: int = METRIC_DIGITS) -> Any:
    """Return ``obj`` (JSON-like) with every float rounded to ``digits`` significant digits."""
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}") if math.isfinite(obj) else obj
    if isinstance(obj, Mapping):
        return {key: significant(value, digits) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [significant(value, digits) for value in obj]
    return obj


def significant_frame(frame: pd.DataFrame, digits: int = METRIC_DIGITS) -> pd.DataFrame:
    """Return ``frame`` with its float columns rounded to ``digits`` significant digits."""
    out = frame.copy()
    for name in out.columns:
        if pd.api.types.is_float_dtype(out[name]):
            out[name] = out[name].map(lambda v: significant(float(v), digits))
    return out


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


PARQUET_MAGIC = b"PAR1"


def iter_table(
    path: str | Path,
    columns: Callable[[Sequence[str]], list[str]],
    batch_rows: int = 100_000,
) -> Iterator[pd.DataFrame]:
    """Yield a Parquet or CSV table (told apart by its first bytes) in batches of rows.

    ``columns`` picks the columns to read from the file's own; CSV cells are read as text.
    A table without rows is one empty batch (its columns still say what it holds). A missing,
    empty or unreadable file is a one-line :class:`InputError`.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        with path.open("rb") as handle:
            magic = handle.read(len(PARQUET_MAGIC))
        if magic == PARQUET_MAGIC:
            parquet = pq.ParquetFile(path)
            chosen = columns(parquet.schema_arrow.names)
            batches: Iterable[pd.DataFrame] = (
                b.to_pandas() for b in parquet.iter_batches(batch_size=batch_rows, columns=chosen)
            )
        else:
            chosen = columns(pd.read_csv(path, nrows=0).columns.tolist())
            batches = pd.read_csv(path, usecols=chosen, dtype="string", chunksize=batch_rows)
        empty = True
        for batch in batches:
            empty = False
            yield batch
        if empty:
            yield pd.DataFrame(columns=chosen)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise InputError(f"{path}: not a readable Parquet or CSV table ({exc})") from exc


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


def resolved(path: str | Path) -> Path:
    """``path`` made absolute with symlinks followed; a symlink loop is a one-line error."""
    try:
        return Path(path).resolve()
    except RuntimeError as exc:  # Python 3.11 says "Symlink loop from ..." this way
        raise InputError(f"{path}: symlink loop; the path cannot be resolved") from exc
    except OSError as exc:
        raise InputError(f"{path}: the path cannot be resolved ({exc.strerror})") from exc


def resolve_output(out: str | Path, inputs: Sequence[str | Path]) -> Path:
    """Resolve ``out``; refuse it when it would overwrite one of ``inputs`` or a folder holding one.

    A stage replaces its output folder whole, so an output folder that holds an input (say
    ``--out .`` in the project) would take the input with it.
    """
    target = resolved(out)
    for item in inputs:
        source = resolved(item)
        if source == target:
            raise InputError(f"{out}: output path is also an input; refusing to overwrite it")
        if source.is_relative_to(target):
            raise InputError(f"{out}: output folder holds the input {item}; refusing it")
    return target


def check_readable(inputs: Sequence[str | Path]) -> None:
    """Raise a one-line error for an input that cannot be read (a folder: its files).

    Missing inputs are left to the readers, which say what they looked for.
    """
    for item in inputs:
        path = resolved(item)
        files = sorted(p for p in path.iterdir() if p.is_file()) if _listable(path) else [path]
        for file in files:
            if not file.is_file():
                continue
            try:
                with open(file, "rb"):
                    pass
            except OSError as exc:
                shown = item if file == path else file
                raise InputError(f"{shown}: cannot read it ({exc.strerror})") from exc


def _listable(path: Path) -> bool:
    if not path.is_dir():
        return False
    try:
        next(iter(os.scandir(path)), None)
    except OSError as exc:
        raise InputError(f"{path}: cannot list the folder ({exc.strerror})") from exc
    return True


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
    """Yield a fresh scratch folder next to ``near`` (same file system); removed afterwards.

    A full disk in the scratch folder names ``near``, the output the work is for.
    """
    parent = Path(near).parent
    with writing(near, CREATE_FAILURES):
        parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f".{Path(near).name}.work-", dir=parent))
    try:
        with _naming(folder, Path(near), inside=False), writing(near):
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
    """Refuse ``out`` when it is (in) an input or holds one; return it resolved."""
    target = resolve_output(out, inputs)
    for item in inputs:
        folder = resolved(item)
        if folder.is_dir() and target.is_relative_to(folder):
            raise InputError(f"{out}: output path is inside input folder {item}; refusing it")
    return target

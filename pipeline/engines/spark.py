"""Spark engine: the local engine's map (clean -> score per partition) run by PySpark.

pyspark is an optional extra (``pip install .[spark]``) and is imported only in this module,
only when ``--engine spark`` runs. The executors read the export; the driver never holds it.
The driver lists the input files (paths, sizes, header lines: the same
:func:`~pipeline.engines.partitioning.list_export` as the local splitter) and plans byte
ranges of them (:mod:`pipeline.engines.records`); executors need the same paths (a shared file
system, or one machine). Then, on the cluster:

1. **count** (one task per range, skipped when no file is cut): quotes and newlines per range;
   the driver's prefix sums give each range its quote parity and line number at its start;
2. **read**: ``mapInPandas`` over the ranges; each task reads its range, cuts it into records
   with the local splitter's record rule and key (:class:`~pipeline.engines.partitioning.
   RecordKeys`) and emits ``(partition, file, line, lines, record bytes)``; one marker row per
   partition keeps empty partitions in the map, as the local engine scores header-only parts;
3. **the map**: Spark shuffles the records by partition and ``groupBy("partition")
   .applyInPandas`` rebuilds each partition's part files and line sidecars in a temporary
   folder on the executor (:func:`~pipeline.engines.partitioning.write_partition`: the very
   bytes the local splitter writes) and runs :func:`pipeline.engines.work.clean_pass` and
   :func:`~pipeline.engines.work.score_partition`; the rows, plus one row of the partition's
   counts (``stats``), are written by Spark as Parquet ``partitionBy("partition")``;
4. the driver gathers the partitions into ``--out`` in partition order, one in memory at a
   time, through the same :func:`pipeline.scoring.conform_output` and
   :func:`pipeline.io.concat_parquet_parts` as the local engine.

``--as-of latest`` adds one small step before the map: each partition's clean step returns its
orders per day, and the driver reduces them with :func:`~pipeline.engines.work.latest_as_of`.
The map then **cleans again** rather than caching the clean tables: a partition's tables as one
Parquet cell would be a single Arrow value (capped at 2 GiB, held whole by the JVM and the
Python worker), while clean is a pure function of the partition's bytes, so cleaning twice costs
CPU only and gives the same tables. The shuffled records are persisted (memory and disk), so
the input is read and shuffled once.

Model folders, the source config and the feature dictionary are shipped to executors with
``SparkContext.addFile``. An expected error raised on an executor (bad input, no orders) comes
back as the same one-line :class:`~pipeline.errors.PipelineError`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import errors, io
from pipeline.engines import partitioning, records
from pipeline.engines.work import (
    Laps,
    ModelRef,
    ScoreJob,
    clean_pass,
    latest_as_of,
    order_days,
    score_partition,
)
from pipeline.errors import ConfigError
from pipeline.scoring import BOOLEAN_COLUMNS, conform_output, float_columns, output_columns

logger = logging.getLogger(__name__)

RECORD_SCHEMA = "partition int, file int, line long, lines int, no_key boolean, record binary"
#: The read step emits record batches of about this many bytes.
BATCH_BYTES = 16 << 20
#: Range sizes: about two ranges per core, within these bounds.
MIN_RANGE_BYTES = 256 << 10
MAX_RANGE_BYTES = 128 << 20
#: pyspark 4 warns on every import of its pandas layer under pandas 3: noise once the output is
#: checked equal to the local engine's (tests/integration/test_spark_engine.py).
PANDAS_NOTICE = "PySpark does not yet fully support pandas"
#: Python loggers that print Spark's chatter at INFO/WARN.
QUIET_LOGGERS = ("py4j", "pyspark")
#: The driver JVM's logging (log4j2), set before it starts: errors only. The gateway's own
#: level stops Spark's shell default ("Setting default log level to WARN"); a failed task is
#: reported once, by the driver's exception, not also by the loggers that see it fail.
LOG4J2_ERRORS = """\
rootLogger.level = error
rootLogger.appenderRef.console.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
logger.gateway.name = org.apache.spark.api.python.PythonGatewayServer
logger.gateway.level = error
logger.executor.name = org.apache.spark.executor.Executor
logger.executor.level = off
logger.tasks.name = org.apache.spark.scheduler.TaskSetManager
logger.tasks.level = off
logger.writer.name = org.apache.spark.sql.execution.datasources.FileFormatWriter
logger.writer.level = off
logger.utils.name = org.apache.spark.util.Utils
logger.utils.level = off
"""


@dataclass(frozen=True)
class InputFile:
    """What an executor needs to read one export file and rebuild its part files."""

    path: str  # absolute: executors open it
    shown: str  # as given on the command line (the manifest names it so)
    name: str  # the part file inside a partition folder
    header: bytes
    key_index: int
    layout: partitioning.CsvLayout
    size: int

    @property
    def splittable(self) -> bool:
        """Whether a reader can start at a byte offset (not inside a gzip stream)."""
        return not self.path.endswith(".gz")


@dataclass(frozen=True)
class ExportPlan:
    """The export as the driver sees it: file list, headers and byte ranges (tiny)."""

    entries: list[tuple[int, str, str]]
    files: list[InputFile]

    def ranges(self, range_bytes: int) -> list[records.ByteRange]:
        """Cut every file's body into ranges of about ``range_bytes``."""
        return [
            item
            for index, f in enumerate(self.files)
            for item in records.plan_ranges(index, len(f.header), f.size, range_bytes,
                                            f.splittable)
        ]


def plan_export(source_config: str, inputs: list[Path]) -> ExportPlan:
    """List the export's files and read their header lines (the driver's only reads)."""
    listing = partitioning.list_export(source_config, inputs)
    files = []
    for f in listing.files:
        with io.open_binary(f.path) as handle:
            header, index = partitioning.read_header(handle, f.path, f.layout)
        path = Path(f.path).resolve()
        files.append(InputFile(str(path), f.path, f.name, header, index, f.layout,
                               path.stat().st_size))
    return ExportPlan(listing.entries, files)


def range_bytes_for(plan: ExportPlan, cores: int) -> int:
    """About two ranges per core, never tiny and never huge."""
    body = sum(max(f.size - len(f.header), 0) for f in plan.files)
    wanted = math.ceil(body / max(2 * cores, 1))
    return int(min(max(wanted, MIN_RANGE_BYTES), MAX_RANGE_BYTES))


# --- the session --------------------------------------------------------------------------


@contextlib.contextmanager
def session(master: str, partitions: int, scratch: Path | None = None) -> Iterator[Any]:
    """Yield a SparkSession on ``master`` (Arrow, UTC); stop it afterwards if started here.

    When this process starts the JVM, its start-up logging is errors only (a log4j2 file in
    ``scratch``), unless Spark's conf folder has a ``log4j2.properties`` of its own.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=PANDAS_NOTICE, category=FutureWarning)
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise ConfigError(
                "--engine spark needs pyspark: pip install 'loyalty-pipeline[spark]'"
            ) from exc
        active = SparkSession.getActiveSession()
        if active is not None and active.sparkContext.master == master:
            active.conf.set("spark.sql.shuffle.partitions", str(partitions))
            yield active
            return
        if active is not None:  # another master: this run's --spark-master wins
            active.stop()
        with _quiet_jvm_start(scratch):
            spark = _start(SparkSession.builder, master, partitions)
        try:
            yield spark
        finally:
            spark.stop()


@contextlib.contextmanager
def _quiet_jvm_start(scratch: Path | None) -> Iterator[None]:
    conf = os.environ.get("SPARK_CONF_DIR") or str(Path(os.environ.get("SPARK_HOME", ".")) / "conf")
    if scratch is None or "LOG4J_CONFIGURATION_FILE" in os.environ or (
        Path(conf) / "log4j2.properties"
    ).exists():
        yield
        return
    os.environ["LOG4J_CONFIGURATION_FILE"] = str(io.write_text(scratch / "log4j2.properties",
                                                               LOG4J2_ERRORS))
    try:
        yield
    finally:
        del os.environ["LOG4J_CONFIGURATION_FILE"]  # read once, when the JVM starts


def _start(builder: Any, master: str, partitions: int) -> Any:
    # Python workers run this interpreter (with pipeline installed), on every executor too.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    spark = (
        builder.master(master)
        .appName("loyalty-score")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.pyspark.fallback.enabled", "false")
        .config("spark.sql.execution.pandas.inferPandasDictAsMap", "false")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.shuffle.partitions", str(partitions))
        .config("spark.sql.adaptive.enabled", "false")  # keep one task per hash partition
        .config("spark.executorEnv.OMP_NUM_THREADS", "1")  # Spark's cores are the parallelism
        .config("spark.executorEnv.PYTHONWARNINGS", f"ignore:{PANDAS_NOTICE}:FutureWarning")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")  # WARN is pandas/Arrow notices and native libs
    return spark


def _ship(spark: Any, job: ScoreJob) -> ScoreJob:
    """Add model folders and configs to the Spark job; return the job with shipped names."""
    for ref in job.models:
        spark.sparkContext.addFile(str(Path(ref.path).resolve()), recursive=True)
    spark.sparkContext.addFile(str(Path(job.source_config).resolve()))
    spark.sparkContext.addFile(str(Path(job.features_config).resolve()))
    return replace(
        job,
        source_config=Path(job.source_config).name,
        features_config=Path(job.features_config).name,
        models=tuple(replace(ref, path=Path(ref.path).name) for ref in job.models),
    )


def _on_executor(job: ScoreJob) -> ScoreJob:
    """Point the shipped names at the executor's local copies (``SparkFiles``)."""
    from pyspark import SparkFiles

    return replace(
        job,
        source_config=SparkFiles.get(job.source_config),
        features_config=SparkFiles.get(job.features_config),
        models=tuple(replace(ref, path=SparkFiles.get(ref.path)) for ref in job.models),
    )


@contextlib.contextmanager
def _executor_errors() -> Iterator[None]:
    """Turn a PipelineError raised on an executor back into itself (one line, its exit code)."""
    try:
        yield
    except errors.PipelineError:
        raise
    except Exception as exc:  # noqa: BLE001 - Spark wraps executor errors in its own types
        found = re.search(r"pipeline\.errors\.(\w+): (.+)", str(exc))
        kind = getattr(errors, found.group(1), None) if found else None
        if found and isinstance(kind, type) and issubclass(kind, errors.PipelineError):
            raise kind(found.group(2).strip()) from exc
        raise


# --- what runs on the executors -----------------------------------------------------------


def _count_fn(plan: ExportPlan) -> Any:
    def count(item: records.ByteRange) -> tuple[int, int]:
        f = plan.files[item.file]
        return records.count_range(f.path, item.start, item.end, f.layout.quote)

    return count


def _read_fn(plan: ExportPlan, ranges: list[records.ByteRange], partitions: int) -> Any:
    def read(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            for index in batch["id"].tolist():
                yield from _read_range(plan, ranges[int(index)], partitions)

    return read


def _read_range(
    plan: ExportPlan, item: records.ByteRange, partitions: int
) -> Iterator[pd.DataFrame]:
    """One range's records keyed by partition, in batches of about :data:`BATCH_BYTES`."""
    f = plan.files[item.file]
    keys = partitioning.RecordKeys(f.layout, f.key_index, partitions)
    rows: dict[str, list[Any]] = {k: [] for k in ("partition", "line", "lines", "no_key",
                                                   "record")}
    held = 0
    for line, n_lines, record in records.read_range(f.path, item, len(f.header), f.layout.quote):
        part = keys.partition(record, n_lines)
        rows["partition"].append(partitioning.NO_KEY_PARTITION if part < 0 else part)
        rows["line"].append(line)
        rows["lines"].append(n_lines)
        rows["no_key"].append(part < 0)
        rows["record"].append(record)
        held += len(record)
        if held >= BATCH_BYTES:
            yield _records_frame(item.file, rows)
            rows, held = {k: [] for k in rows}, 0
    if rows["record"]:
        yield _records_frame(item.file, rows)


def _records_frame(file: int, rows: dict[str, list[Any]]) -> pd.DataFrame:
    frame = pd.DataFrame({
        "partition": pd.array(rows["partition"], dtype="int32"),
        "file": pd.array([file] * len(rows["record"]), dtype="int32"),
        "line": pd.array(rows["line"], dtype="int64"),
        "lines": pd.array(rows["lines"], dtype="int32"),
        "no_key": pd.array(rows["no_key"], dtype="bool"),
    })
    frame["record"] = pd.Series(rows["record"], dtype=object)
    return frame


def _local_dir() -> str | None:
    """Return the executor's scratch folder (Spark's local dirs), else None (the system's)."""
    dirs = os.environ.get("SPARK_LOCAL_DIRS", "")
    return dirs.split(",")[0] or None


def _clean_group(
    job: ScoreJob, plan: ExportPlan, group: pd.DataFrame
) -> tuple[int, dict[str, pd.DataFrame], dict[str, Any]]:
    """Rebuild one partition's part folder from its records and clean it as the local engine."""
    partition = int(group["partition"].iloc[0])
    rows = group[group["file"] >= 0].sort_values(["file", "line"], kind="stable")
    per_file = rows.groupby("file")["lines"].agg(["size", "sum"])
    split = partitioning.ExportSplit(0, plan.entries, [])
    with tempfile.TemporaryDirectory(prefix="loyalty-part-", dir=_local_dir()) as tmp:
        partitioning.write_partition(
            tmp, partition, [(f.name, f.header) for f in plan.files],
            zip(rows["file"].tolist(), rows["line"].tolist(), rows["lines"].tolist(),
                rows["record"].tolist(), strict=True),
        )
        tables, stats = clean_pass(job, split.part_inputs(tmp, partition))
    stats["input"] = {
        "records": [int(per_file["size"].get(i, 0)) for i in range(len(plan.files))],
        "lines": [int(per_file["sum"].get(i, 0)) for i in range(len(plan.files))],
        "no_key": [int(rows.loc[rows["file"] == i, "no_key"].sum())
                   for i in range(len(plan.files))],
    }
    return partition, tables, {"partition": partition, **stats}


def _days_fn(shipped: ScoreJob, plan: ExportPlan) -> Any:
    def days(group: pd.DataFrame) -> pd.DataFrame:
        partition, tables, _ = _clean_group(_on_executor(shipped), plan, group)
        counts = json.dumps(order_days(tables))
        return _for_arrow(pd.DataFrame({"partition": [partition], "order_days": [counts]}))

    return days


def _map_fn(shipped: ScoreJob, plan: ExportPlan) -> Any:
    def score(group: pd.DataFrame) -> pd.DataFrame:
        job = _on_executor(shipped)
        partition, tables, stats = _clean_group(job, plan, group)
        scores, more = score_partition(job, tables)
        stats.update(more)
        columns = output_columns(job.targets, job.rules.top_reasons)
        blank = conform_output(pd.DataFrame({c: [None] for c in columns}), columns,
                               float_columns(job.targets))
        out = pd.concat([scores, blank], ignore_index=True)
        out.insert(0, "partition", pd.Series([partition] * len(out), dtype="int32"))
        out["stats"] = pd.array([None] * len(scores) + [json.dumps(stats)], dtype="string")
        return _for_arrow(out)

    return score


def _for_arrow(frame: pd.DataFrame) -> pd.DataFrame:
    """Hand pandas' Arrow-backed strings to Spark as Python objects.

    pyspark (4.x) builds its Arrow batches with ``pa.Array.from_pandas``, which fails on the
    chunked arrays behind pandas 3 string columns; object columns of ``str``/None convert.
    """
    out = frame.copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.StringDtype):
            column = out[name]
            out[name] = pd.Series(column.astype(object).where(column.notna(), None),
                                  index=out.index, dtype=object)
    return out


def _spark_schema(job: ScoreJob) -> str:
    floats = float_columns(job.targets)

    def kind(name: str) -> str:
        if name == "as_of":
            return "timestamp"
        if name in floats:
            return "double"
        return "boolean" if name in BOOLEAN_COLUMNS else "string"

    columns = output_columns(job.targets, job.rules.top_reasons)
    return ", ".join(["partition int", *(f"{c} {kind(c)}" for c in columns), "stats string"])


# --- the driver ---------------------------------------------------------------------------


def _split_summary(plan: ExportPlan, stats: list[dict[str, Any]]) -> dict[str, object]:
    """Rebuild the local splitter's summary of the input from the partitions' counts."""
    files = []
    for i, f in enumerate(plan.files):
        files.append(partitioning.PartitionStats(
            file=f.shown, header_lines=1,
            records=[s["input"]["records"][i] for s in stats],
            lines=[s["input"]["lines"][i] for s in stats],
            no_key_records=sum(s["input"]["no_key"][i] for s in stats),
        ))
    return partitioning.ExportSplit(len(stats), plan.entries, files).as_dict()


def _placed_ranges(spark: Any, plan: ExportPlan, range_bytes: int) -> list[records.ByteRange]:
    """Plan the ranges; count quotes and newlines on the cluster when a file is cut."""
    ranges = plan.ranges(range_bytes)
    if len(ranges) == len(plan.files):  # every file is one range: nothing to count
        return ranges
    counts = spark.sparkContext.parallelize(ranges, len(ranges)).map(_count_fn(plan)).collect()
    return records.place_ranges(ranges, counts)


def _gather(job: ScoreJob, folder: Path, work: Path, partitions: int
            ) -> tuple[list[Path], list[dict[str, Any]]]:
    """Read Spark's output one partition at a time: scores to parts, counts to stats."""
    columns = output_columns(job.targets, job.rules.top_reasons)
    parts, stats = [], []
    for p in range(partitions):
        frame = io.read_parquet(folder / f"partition={p}")
        is_stats = frame["stats"].notna()
        stats.append(json.loads(frame.loc[is_stats, "stats"].iloc[0]))
        scores = frame.loc[~is_stats].sort_values("customer_id", kind="stable")
        scores = conform_output(scores.reset_index(drop=True), columns, float_columns(job.targets))
        parts.append(io.write_parquet(work / "final" / f"part-{p:05d}.parquet", scores))
    return parts, stats


def run_spark(
    job: ScoreJob,
    inputs: list[Path],
    out: Path,
    fmt: str,
    partitions: int,
    master: str,
    work: Path,
    range_bytes: int | None = None,
) -> dict[str, Any]:
    """Score an export with PySpark on ``master``; write ``out``; return the run manifest.

    ``range_bytes`` fixes the size of the byte ranges executors read (default: about two per
    core). ``work`` must be visible to the driver and, for Spark's output, to the executors.
    """
    from pyspark import StorageLevel

    from pipeline.engines.local import build_manifest

    laps = Laps()
    lap = laps.lap
    plan = plan_export(job.source_config, inputs)
    with session(master, partitions, work) as spark, _executor_errors():
        size = range_bytes or range_bytes_for(plan, spark.sparkContext.defaultParallelism)
        shipped = _ship(spark, job)
        lap("plan_seconds")
        ranges = _placed_ranges(spark, plan, size)
        lap("count_seconds")
        markers = spark.createDataFrame(
            [(p, -1, 0, 0, False, b"") for p in range(partitions)], RECORD_SCHEMA)
        keyed = (
            spark.range(len(ranges), numPartitions=len(ranges))
            .mapInPandas(_read_fn(plan, ranges, partitions), RECORD_SCHEMA)
            .unionByName(markers)
            .repartition(partitions, "partition")
        )
        if job.as_of is None:
            keyed = keyed.persist(StorageLevel.MEMORY_AND_DISK)
            days = (keyed.groupBy("partition")
                    .applyInPandas(_days_fn(shipped, plan), "partition int, order_days string")
                    .collect())
            per_partition = [
                {int(d): int(n) for d, n in json.loads(row["order_days"]).items()}
                for row in sorted(days, key=lambda row: row["partition"])
            ]
            job = replace(job, as_of=latest_as_of(job, per_partition))
            shipped = replace(shipped, as_of=job.as_of)
            lap("clean_seconds")
        spark_out = work / "spark_scores"
        (keyed.groupBy("partition").applyInPandas(_map_fn(shipped, plan), _spark_schema(job))
         .write.mode("overwrite").partitionBy("partition").parquet(str(spark_out)))
        keyed.unpersist()
        lap("map_seconds")
    parts, stats = _gather(job, spark_out, work, partitions)
    rows = io.concat_parquet_parts(out, parts, fmt)
    lap("write_seconds")
    manifest = build_manifest(job, _split_summary(plan, stats),
                              [{k: v for k, v in s.items() if k != "input"} for s in stats],
                              rows, laps.timings)
    manifest["engine"] = {"name": "spark", "master": master, "ranges": len(ranges),
                          "range_bytes": size}
    return manifest


__all__ = ["ModelRef", "plan_export", "run_spark", "session"]

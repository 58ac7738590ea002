"""Execution engines for batch scoring: ``local`` (process pool) and ``spark`` (PySpark).

Both run the same per-partition function on partitions made by
:mod:`pipeline.engines.partitioning`; pyspark is imported only inside ``spark.py``.
"""

"""Helpers shared by the tests: the demo feature panel and the static import graph of ``pipeline``.

Importable as ``tests.support`` (pyproject's ``pythonpath = ["."]`` puts the repository root on
``sys.path`` for pytest and its xdist workers; the benchmarks add it themselves).
"""

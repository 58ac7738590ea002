"""A LightGBM text model checked for its structure before LightGBM parses it.

LightGBM trusts its model file: a damaged tree aborts the whole process from C++ ("terminate
called without an active exception", ``std::bad_alloc``), and a huge ``num_class`` loads, then
asks for tens of GiB at the first prediction. :func:`check_model_text` reads the header and
every tree's counts with plain Python first, so that a truncated file, random bytes or a header
that promises more than the file holds is one :class:`ValueError` saying what is wrong; the
loader (:mod:`pipeline.modeling.artifacts`) names the file in front of it.

What is checked (LightGBM 4 writes it so): the first line is ``tree``; ``version=v<N>``;
``num_class``, ``num_tree_per_iteration`` and ``max_feature_idx`` are small non-negative
integers; ``feature_names`` and ``feature_infos`` have ``max_feature_idx + 1`` entries;
``tree_sizes`` gives one size per ``Tree=i`` block, each block is exactly that long (the
offsets LightGBM reads the trees at); in each tree ``num_leaves`` >= 1, the split arrays have
``num_leaves - 1`` entries and ``leaf_value`` ``num_leaves``; a split's feature is a known
one and its children are nodes or leaves of that tree; the text ends with ``end of trees``.
"""

from __future__ import annotations

import re

#: Bounds far above any model this pipeline trains, far below what makes LightGBM allocate
#: without end.
MAX_CLASSES = 1000
MAX_FEATURES = 100_000
MAX_LEAVES = 131_072

_SPLIT_ARRAYS = ("split_feature", "split_gain", "threshold", "decision_type")
_TREE = re.compile(r"^Tree=(\d+)$", re.MULTILINE)


def check_model_text(text: str) -> None:
    """Raise :class:`ValueError` (what is wrong, in a few words) unless ``text`` is whole."""
    if not text.strip():
        raise ValueError("empty file")
    if not text.startswith("tree\n"):
        raise ValueError("not a LightGBM text model (no 'tree' first line)")
    starts = [m.start() for m in _TREE.finditer(text)]
    end = text.find("\nend of trees")
    if end < 0:
        raise ValueError("truncated: no 'end of trees'")
    header = _fields(text[: starts[0] if starts else end])
    if not re.fullmatch(r"v\d+", header.get("version", "")):
        raise ValueError("header without a 'version=v<N>' line")
    classes = _count(header, "num_class", 1, MAX_CLASSES)
    _count(header, "num_tree_per_iteration", 1, max(classes, 1))
    features = _count(header, "max_feature_idx", 0, MAX_FEATURES - 1) + 1
    for key in ("feature_names", "feature_infos"):
        found = len(header.get(key, "").split())
        if found != features:
            raise ValueError(f"header lists {found} {key}, max_feature_idx says {features}")
    sizes = _ints(header, "tree_sizes") if "tree_sizes" in header else []
    if len(sizes) != len(starts):
        raise ValueError(f"header gives {len(sizes)} tree sizes, the file holds {len(starts)}")
    bounds = [*starts, end + 1]
    for index, (start, stop) in enumerate(zip(bounds, bounds[1:], strict=False)):
        number = int(_TREE.match(text, start).group(1))  # type: ignore[union-attr]
        if number != index:
            raise ValueError(f"tree {index} is numbered {number}")
        if stop - start != sizes[index]:
            raise ValueError(
                f"tree {index} is {stop - start} bytes, the header says {sizes[index]}"
            )
        _check_tree(index, _fields(text[start:stop]), features)


def _check_tree(index: int, tree: dict[str, str], features: int) -> None:
    leaves = _count(tree, "num_leaves", 1, MAX_LEAVES, f"tree {index}")
    _count(tree, "num_cat", 0, max(leaves - 1, 0), f"tree {index}")
    if len(_floats(tree, "leaf_value", index)) != leaves:
        raise ValueError(f"tree {index}: leaf_value does not have num_leaves={leaves} entries")
    if leaves == 1:
        return
    for key in (*_SPLIT_ARRAYS, "left_child", "right_child"):
        found = len(tree.get(key, "").split())
        if found != leaves - 1:
            raise ValueError(f"tree {index}: {key} has {found} entries, expected {leaves - 1}")
    if any(not 0 <= f < features for f in _ints(tree, "split_feature", f"tree {index}")):
        raise ValueError(f"tree {index}: a split on a feature the header does not list")
    for key in ("left_child", "right_child"):
        # a child is a node (0 .. leaves-2) or a leaf, written ~leaf (-1 .. -leaves)
        if any(not -leaves <= c <= leaves - 2 for c in _ints(tree, key, f"tree {index}")):
            raise ValueError(f"tree {index}: {key} points outside the tree")


def _fields(block: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in block.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out.setdefault(key.strip(), value.strip())
    return out


def _count(fields: dict[str, str], key: str, low: int, high: int, where: str = "header") -> int:
    value = fields.get(key)
    if value is None or not re.fullmatch(r"\d{1,12}", value):
        raise ValueError(f"{where}: {key} missing or not a count")
    number = int(value)
    if not low <= number <= high:
        raise ValueError(f"{where}: {key}={number} outside {low}..{high}")
    return number


def _ints(fields: dict[str, str], key: str, where: str = "header") -> list[int]:
    try:
        return [int(v) for v in fields.get(key, "").split()]
    except ValueError:
        raise ValueError(f"{where}: {key} holds a value that is not an integer") from None


def _floats(fields: dict[str, str], key: str, index: int) -> list[float]:
    try:
        return [float(v) for v in fields.get(key, "").split()]
    except ValueError:
        raise ValueError(f"tree {index}: {key} holds a value that is not a number") from None

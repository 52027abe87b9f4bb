"""A feature family reads as features (issue 36.4): its import CTEs, one call of the
incremental bookkeeping under a one-line comment, then the features, the first of them
within the first 30 lines. Reads the SQL files and the YAML; runs nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from dbt_runner import REPO

FEATURES = REPO / "models" / "features"
FAMILIES = sorted(
    path for path in FEATURES.glob("user_*_features.sql") if path.name != "user_features.sql"
)
BOOKKEEPING = "{{ select_cutoffs_to_build("
FIRST_FEATURE_BY_LINE = 30


def _feature_names() -> set[str]:
    models = yaml.safe_load((FEATURES / "_features__models.yml").read_text())["models"]
    (user_features,) = (model for model in models if model["name"] == "user_features")
    return {
        column["name"]
        for column in user_features["columns"]
        if column.get("config", {}).get("meta", {}).get("feature")
    }


def first_feature_line(sql: str, features: set[str]) -> int:
    """The 1-based line where the select item of the first feature (`... as <feature>`)
    starts, or 0."""
    lines = sql.splitlines()
    for index, line in enumerate(lines):
        named = re.search(r"\bas (\w+),?$", line.strip())
        if named and named.group(1) in features:
            # an expression over several lines starts after the item before it, outside
            # the parentheses it closes
            depth = line.count(")") - line.count("(")
            while index > 0:
                if depth <= 0 and re.search(r"(,|^select|^--.*)$", lines[index - 1].strip()):
                    break
                index -= 1
                depth += lines[index].count(")") - lines[index].count("(")
            return index + 1
    return 0


def test_every_family_is_listed() -> None:
    assert {path.stem for path in FAMILIES} >= {
        "user_purchase_features",
        "user_breadth_features",
        "user_profile_features",
    }


@pytest.mark.parametrize("family", FAMILIES, ids=lambda path: path.stem)
def test_the_bookkeeping_is_one_call_after_the_imports(family: Path) -> None:
    lines = family.read_text().splitlines()
    calls = [number for number, line in enumerate(lines) if BOOKKEEPING in line]
    assert len(calls) == 1, f"{family.name}: {len(calls)} calls of select_cutoffs_to_build"
    (call,) = calls
    assert lines[call - 1].startswith("-- "), f"{family.name}: no one-line comment above it"
    last_ref = max(number for number, line in enumerate(lines) if "{{ ref(" in line)
    assert last_ref < call, f"{family.name}: a ref() after the bookkeeping, line {last_ref + 1}"
    assert "cutoffs_fingerprinted as" not in family.read_text()


@pytest.mark.parametrize("family", FAMILIES, ids=lambda path: path.stem)
def test_the_first_feature_is_within_the_first_30_lines(family: Path) -> None:
    line = first_feature_line(family.read_text(), _feature_names())
    assert 0 < line <= FIRST_FEATURE_BY_LINE, f"{family.name}: first feature on line {line}"

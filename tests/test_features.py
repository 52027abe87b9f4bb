import numpy as np
import pyarrow as pa
import pytest

from purchasing_power.features import FeatureSchema, FeatureSpec


def _registry(names: list[str]) -> pa.Table:
    return pa.table(
        {
            "feature_position": list(range(len(names), 0, -1)),
            "feature_name": names,
            "feature_description": [f"about {name}" for name in names],
            "monotone_constraint": [0] * len(names),
        }
    )


def test_registry_order_is_feature_position() -> None:
    schema = FeatureSchema.from_registry(_registry(["b", "a"]))
    assert schema.names == ["a", "b"]
    assert FeatureSchema.from_card(schema.to_card()) == schema


def test_matrix_follows_the_schema_order_and_nulls_become_nan() -> None:
    schema = FeatureSchema((FeatureSpec("x", "x"), FeatureSpec("y", "y")))
    table = pa.table(
        {
            "y": pa.array([True, None], pa.bool_()),
            "user_id": ["u1", "u2"],
            "x": pa.array([3, None], pa.int64()),
        }
    )
    matrix = schema.to_matrix(table)
    assert matrix.dtype == np.float64
    np.testing.assert_array_equal(matrix, np.array([[3.0, 1.0], [np.nan, np.nan]]))


def test_missing_feature_column_and_empty_or_duplicated_registry_are_errors() -> None:
    schema = FeatureSchema((FeatureSpec("x", "x"),))
    with pytest.raises(KeyError, match="x"):
        schema.to_matrix(pa.table({"y": [1]}))
    with pytest.raises(ValueError, match="feature_registry is empty"):
        FeatureSchema(())
    with pytest.raises(ValueError, match="twice"):
        FeatureSchema((FeatureSpec("x", "x"), FeatureSpec("x", "again")))

"""Adding a feature is one SQL column and its YAML entry, nothing in Python (issue 3.4).

The test copies the project to a temporary folder, adds one column to
``models/features/user_engagement_features.sql`` and its entry (``meta: {feature:
true}``, a description) to ``user_features`` in ``_features__models.yml``, runs the whole
pipeline on the small generated shop, and finds the new column in
``ml.feature_registry``, in the trained model's card, in the splits of the LightGBM text
models and among the reasons BI users see. The feature is chosen to be strongly
predictive (spend ever per day since the last visit: monetary value and recency in one
column), so that both heads split on it and it is a top reason for many users.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import lightgbm as lgb
import pytest
import yaml

from dbt_runner import REPO, DbtProject, copy_project, make_project

pytestmark = pytest.mark.slow

FEATURE = "ratio_lifetime_spend_to_days_since_last_event"
DESCRIPTION = "Spend ever, per day since the last visit"
FAMILY = Path("models/features/user_engagement_features.sql")
FAMILY_YAML = Path("models/features/_features__models.yml")

# Appended as the family's last CTE; the family model ends with `select * from <cte>`.
NEW_CTE = """,

{feature}_added as (

    select
        {last}.*,
        spend_recency.{feature}
    from {last}
    left join (
        select
            user_id,
            cutoff_date,
            max(sum_purchase_amount) filter (where window_days is null)
            / (date_diff('day', any_value(last_activity_date), cutoff_date) + 1)
                as {feature}
        from {{{{ ref('int_user_activity_windowed') }}}}
        group by user_id, cutoff_date
    ) as spend_recency
        on
            {last}.user_id = spend_recency.user_id
            and {last}.cutoff_date = spend_recency.cutoff_date

)

select * from {feature}_added
"""


def add_feature_column(project: Path) -> None:
    """What an analyst does: a SQL column in a family model, and its YAML entry."""
    sql_path = project / FAMILY
    sql = sql_path.read_text()
    last = re.search(r"\)\s*select \* from (\w+)\s*$", sql)
    assert last, f"{FAMILY} no longer ends with `select * from <cte>`"
    sql_path.write_text(
        sql[: last.start()] + ")" + NEW_CTE.format(feature=FEATURE, last=last.group(1))
    )

    yaml_path = project / FAMILY_YAML
    models = yaml.safe_load(yaml_path.read_text())
    (user_features,) = (m for m in models["models"] if m["name"] == "user_features")
    user_features["columns"].append(
        {
            "name": FEATURE,
            "data_type": "double",
            "description": DESCRIPTION,
            "config": {"meta": {"feature": True}},
        }
    )
    yaml_path.write_text(yaml.safe_dump(models, sort_keys=False))


@pytest.fixture(scope="module")
def extended(small_raw: Path, tmp_path_factory: pytest.TempPathFactory) -> DbtProject:
    root = copy_project(tmp_path_factory.mktemp("project"))
    add_feature_column(root)
    project = make_project(tmp_path_factory.mktemp("extended"), root=root)
    project.run("build", vars={"raw_path": str(small_raw), "horizon_days": 60})
    return project


def _active_model(project: DbtProject) -> Path:
    with duckdb.connect(str(project.warehouse), read_only=True) as connection:
        (path,) = connection.execute(
            "select artifact_path from ml.ml_models where is_active"
        ).fetchone()
    return Path(path)


def test_the_copy_is_not_the_repo_and_the_repo_is_untouched(extended: DbtProject) -> None:
    assert extended.root != REPO
    assert FEATURE in (extended.root / FAMILY).read_text()
    assert FEATURE not in (REPO / FAMILY).read_text()
    assert FEATURE not in (REPO / FAMILY_YAML).read_text()


def test_the_new_column_is_in_the_feature_registry(extended: DbtProject) -> None:
    with duckdb.connect(str(extended.warehouse), read_only=True) as connection:
        registry = dict(
            connection.execute(
                "select feature_name, feature_description from ml.feature_registry"
            ).fetchall()
        )
        values = connection.execute(
            f"select count({FEATURE}), max({FEATURE}) from features.user_features"
        ).fetchone()
    assert registry[FEATURE] == DESCRIPTION
    assert values[0] > 100
    assert values[1] > 0


def test_the_new_column_is_in_the_model_card(extended: DbtProject) -> None:
    card = json.loads((_active_model(extended) / "card.json").read_text())
    names = [feature["name"] for feature in card["features"]]
    assert FEATURE in names
    assert names.count(FEATURE) == 1


def test_the_lightgbm_models_split_on_the_new_column(extended: DbtProject) -> None:
    model_files = sorted(_active_model(extended).glob("*.lgb.txt"))
    assert model_files
    splits = {}
    for model_file in model_files:
        booster = lgb.Booster(model_file=str(model_file))
        assert FEATURE in booster.feature_name(), model_file.name
        importance = dict(
            zip(booster.feature_name(), booster.feature_importance("split"), strict=True)
        )
        splits[model_file.name] = int(importance[FEATURE])
    assert all(count > 0 for count in splits.values()), splits


def test_the_new_column_is_a_reason_for_some_users(extended: DbtProject) -> None:
    with duckdb.connect(str(extended.warehouse), read_only=True) as connection:
        reasons = dict(
            connection.execute(
                "select feature_name, count(distinct user_id)"
                " from marts.purchasing_power_reasons group by feature_name"
            ).fetchall()
        )
    # a top reason for many users, not a fluke of one
    assert reasons.get(FEATURE, 0) >= 50, sorted(reasons.items(), key=lambda item: -item[1])

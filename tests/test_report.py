"""The model report renders every section from a card, with no external assets."""

from __future__ import annotations

import json
import re

import pytest

from model_examples import HURDLE_SETTINGS, SCHEMA, examples, trained
from purchasing_power.baselines import METHODS
from purchasing_power.registration import register_models
from purchasing_power.report import metrics_table, render_report
from purchasing_power.tiers import Tier

# gain, lift, a calibration chart for the model and each baseline, the tier histogram,
# two importance charts
CHARTS = 2 + 1 + len(METHODS) + 1 + 2


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return register_models(
        trained(),
        schema=SCHEMA,
        settings=HURDLE_SETTINGS,
        as_of="2025-04-01",
        scoring_features=SCHEMA.to_matrix(examples(rows_per_cutoff=100, seed=5)),
        tiers=(Tier("low", 0.0, 50.0), Tier("high", 50.0, 100.0)),
        artifacts_dir=tmp_path_factory.mktemp("artifacts"),
    ).card


def test_report_has_every_section_as_inline_svg(card: dict) -> None:
    page = render_report(card)
    for heading in (
        "Candidates and baselines, mean over the folds", "Each fold",
        "Cumulative gain and lift", "Decile calibration",
        "Scores by tier", "Feature importance", "ONNX parity",
    ):  # fmt: skip
        assert heading in page
    assert page.count("<svg ") == CHARTS
    assert page.count("<polyline") >= 2 * 4
    assert card["model_version"] in page
    auc = next(
        row["value"]
        for row in card["metrics"]
        if row["method"] == "lightgbm" and row["metric"] == "auc"
    )
    assert f"{auc:.3f}" in page
    # every method's AUC on every fold
    for row in card["fold_metrics"]:
        if row["metric"] == "auc":
            assert f"<td>{row['value']:.3f}</td>" in page
    # a parity row per graph for each gated output, the spend graph's probability included
    assert page.count("<td>spend: purchase_probability</td>") == 2


def test_candidates_and_baselines_are_rows_and_the_metrics_columns(card: dict) -> None:
    """Nine methods and more fit the page's width as rows; eight metrics as columns."""
    table = metrics_table(card)
    methods = {row["method"] for row in card["metrics"]}
    assert table.count("<tr>") == 1 + len(methods)
    for method in methods:
        assert f"<tr><td>{method}</td>" in table
    assert table.startswith("<table><tr><th>method</th><th>AUC</th>")


def test_report_is_self_contained(card: dict) -> None:
    page = render_report(card)
    assert "<script" not in page
    assert not re.search(r"""(src|href)\s*=""", page)
    assert re.findall(r"https?://[^\"' ]+", page) == ["http://www.w3.org/2000/svg"] * CHARTS


def test_an_unproven_model_says_why(card: dict) -> None:
    reason = "normalized_gini: lightgbm 0.7000 does not beat rfm 0.7500"
    page = render_report({**card, "status": "unproven", "status_reasons": [reason]})
    assert 'class="badge unproven"' in page
    assert reason in page


def test_a_card_read_back_from_json_keeps_model_and_tier_order(card: dict) -> None:
    page = render_report(json.loads(json.dumps(card, sort_keys=True)))
    legend = page.index('<div class="legend">')
    assert page.index("lightgbm", legend) < page.index("bg_nbd_gamma_gamma", legend)
    tiers = page.index('<div class="legend">', legend + 1)
    assert page.index("low<", tiers) < page.index("high<", tiers)

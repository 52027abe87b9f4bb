"""The CDNOW bench's converter and evaluation (bench/cdnow/), on a tiny CDNOW-format file
built here: no download. What its table rests on."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import holdout
from cdnow import data, evaluate

AS_OF = dt.date(1997, 10, 1)

# customer, date, CDs, dollars: 1 buys twice before as_of (two lines on 1997-01-05) and
# once on as_of itself; 2 once, never again; 3 on the last calibration day and in the
# holdout's last day; 4 only after as_of (not a calibration customer)
LINES = """\
 00001 19970105  1   10.00
 00001 19970105  2   20.00
 00001 19970301  1    5.50
 00001 19971001  1    7.00
 00002 19970210  3   33.00
 00003 19970930  1   12.00
 00003 19980630  2   40.00
 00003 19980701  1   99.00
 00004 19971115  1   15.00
"""


@pytest.fixture
def master(tmp_path: Path) -> Path:
    path = tmp_path / "CDNOW_master.txt"
    path.write_text(" customer_id  date number_of_cds  dollar_value\n" + LINES)
    return path


def test_the_converter_gives_one_purchase_event_per_line_at_midnight_utc(
    master: Path, tmp_path: Path
):
    purchases = data.read_master(master)
    events = pq.read_table(data.write_events(purchases, tmp_path / "raw")).to_pylist()

    assert len(events) == 9
    assert [e["event_id"] for e in events[:2]] == ["1-19970105-0", "1-19970105-1"]
    assert len({e["event_id"] for e in events}) == 9
    assert events[0]["event_time"] == dt.datetime(1997, 1, 5)
    assert {e["event_type"] for e in events} == {"purchase"}
    assert (events[1]["quantity"], events[1]["amount"], events[1]["user_id"]) == (2, 20.0, "1")
    # the same file, the same ids
    again = data.to_events(data.read_master(master))
    assert again.column("event_id").to_pylist() == [e["event_id"] for e in events]


def test_summaries_split_calibration_and_holdout_at_as_of(master: Path) -> None:
    customers = data.summarize(data.read_master(master), as_of=AS_OF, holdout_days=273)

    assert customers.customer_id.tolist() == ["1", "2", "3"]  # 4 bought only later
    assert customers.purchase_days.tolist() == [2, 1, 1]  # two lines of one day: one date
    assert customers.spend.tolist() == [35.5, 33.0, 12.0]
    assert customers.repeat_mean_value[0] == 5.5
    assert np.isnan(customers.repeat_mean_value[1])
    # [as_of, as_of + 273): the event on as_of counts, 1998-07-01 is past the end
    assert customers.holdout_spend.tolist() == [7.0, 0.0, 40.0]
    assert customers.holdout_purchased.tolist() == [True, False, True]


def test_btyd_inputs_are_weeks_to_the_day_before_as_of(master: Path) -> None:
    customers = data.summarize(data.read_master(master), as_of=AS_OF, holdout_days=273)
    x, t_x, age = evaluate.btyd_inputs(customers, as_of=AS_OF)

    assert x.tolist() == [1.0, 0.0, 0.0]
    assert t_x[0] == pytest.approx(55 / 7)  # 1997-01-05 to 1997-03-01
    assert age[0] == pytest.approx(268 / 7)  # to 1997-09-30
    assert age[2] == 0.0


def test_rfm_decay_is_the_spend_rate_halved_every_13_weeks(master: Path) -> None:
    customers = data.summarize(data.read_master(master), as_of=AS_OF, holdout_days=273)
    prediction = evaluate.rfm_decay(customers, as_of=AS_OF, horizon_days=273)

    # customer 1: 35.5 over 269 days, last purchase 214 days before as_of
    assert prediction.spend[0] == pytest.approx(35.5 / 269 * 273 * 0.5 ** (214 / 7 / 13))
    assert prediction.spend[2] == pytest.approx(12.0 / 1 * 273 * 0.5 ** (1 / 7 / 13))


def test_rfm_features_see_only_purchases_strictly_before_the_cutoff(master: Path) -> None:
    purchases = data.read_master(master)
    ids = np.array(["1", "2", "3"], dtype=object)
    at_first_repeat = evaluate.rfm_features(
        purchases, ids, cutoff=data.epoch_day(dt.date(1997, 3, 1))
    )
    columns = dict(zip(evaluate.RFM_FEATURES, at_first_repeat.T, strict=True))

    assert columns["count_purchase_days"][0] == 1  # 1997-03-01 itself is not before it
    assert columns["sum_spend"][0] == 30.0
    assert columns["days_since_last_purchase"][0] == 55
    assert columns["sum_quantity"][0] == 3
    assert np.isnan(columns["sum_spend"][2])  # customer 3 has not bought yet


def test_the_evaluation_scores_every_customer_against_the_holdout(master: Path) -> None:
    customers = data.summarize(data.read_master(master), as_of=AS_OF, holdout_days=273)
    actual, purchased = customers.holdout_spend, customers.holdout_purchased
    perfect = holdout.Prediction("perfect", actual, actual)
    figures = holdout.evaluate(actual, purchased, perfect)

    assert figures["mae"] == 0.0
    assert figures["total_bias_percent"] == 0.0
    assert figures["normalized_gini"] == pytest.approx(1.0)
    assert figures["auc"] == 1.0
    reversed_ = holdout.Prediction("reversed", -actual, -actual)
    assert holdout.evaluate(actual, purchased, reversed_)["auc"] == 0.0
    assert "| perfect | 0.00 |" in holdout.markdown_table({"perfect": figures})


def test_the_label_window_shrinks_to_what_the_calibration_holds() -> None:
    # 273 days of calibration: 28 days of history and two 14-day steps leave 217
    assert evaluate.label_window(first_day=0, as_of_day=273, horizon_days=273) == 217
    assert evaluate.label_window(first_day=0, as_of_day=273, horizon_days=90) == 90
    with pytest.raises(ValueError, match="leave no cutoff"):
        evaluate.label_window(first_day=0, as_of_day=50, horizon_days=90)


def test_the_checksum_guards_the_data(master: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "CDNOW_master.txt").write_text(master.read_text())
    (cache / "CDNOW_sample.txt").write_text(" 00001 0001 19970105  1   10.00\n")
    with pytest.raises(ValueError, match="sha256"):
        data.fetch(cache)
    assert data.read_sample_ids(cache / "CDNOW_sample.txt") == {"1"}


def test_the_ceiling_s_features_see_only_the_calibration(master: Path) -> None:
    from cdnow import ceiling

    purchases = data.read_master(master)
    ids = np.array(["1", "2", "3"], dtype=object)
    x = ceiling.features(purchases, ids, as_of=AS_OF)
    # no purchase on or after as_of moves them: drop those lines, the same features
    before = purchases.select(purchases.day < data.epoch_day(AS_OF))
    np.testing.assert_array_equal(x, ceiling.features(before, ids, as_of=AS_OF))
    rfm = len(evaluate.RFM_FEATURES)
    first, last = x[:, rfm], x[:, rfm + 2]
    assert first.tolist() == [30.0, 33.0, 12.0]  # the first purchase day's dollars
    assert last.tolist() == [5.5, 33.0, 12.0]
    weeks = x[:, -ceiling.WEEKS :]  # dollars by week before as_of, the latest first
    assert weeks[2, 0] == 12.0  # 1997-09-30: the latest week
    assert weeks[2].sum() == 12.0
    assert weeks[0].sum() == 35.5
    assert x.shape == (3, rfm + 6 + ceiling.WEEKS)


def test_the_ceiling_predicts_each_customer_from_the_others_only() -> None:
    from cdnow import ceiling

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 3))
    spend = np.where(x[:, 0] + rng.normal(size=600) > 0, np.exp(x[:, 1]), 0.0)
    bought = spend > 0
    setting = ceiling.Setting("t", "tweedie", 0.1, 4, 20, 30)
    predicted, probability = ceiling.cross_fitted(x, spend, bought, setting, folds=3, seed=1)
    # learnt from the others, it ranks the held-out customers well, not perfectly
    figures = ceiling.scored(spend, bought, predicted, probability)
    assert 0.8 < figures["auc"] < 1.0
    # a customer's own outcome never reaches its prediction: change one customer's
    # outcome and only the other parts' predictions can move
    part = np.random.default_rng(1).integers(0, 3, len(spend))
    changed = spend.copy()
    changed[0] = 1e6
    again, _ = ceiling.cross_fitted(x, changed, changed > 0, setting, folds=3, seed=1)
    assert again[0] == predicted[0]
    assert not np.array_equal(again[part != part[0]], predicted[part != part[0]])


def test_a_method_against_itself_differs_by_nothing_in_every_resample() -> None:
    from cdnow import ceiling

    rng = np.random.default_rng(0)
    spend = rng.exponential(size=200) * (rng.random(200) < 0.3)
    model = holdout.Prediction("model", spend + rng.normal(size=200), rng.random(200))
    gaps = ceiling.paired_bootstrap(spend, spend > 0, model, model, resamples=20, seed=0)
    assert {m: (g["difference"], g["low"], g["high"]) for m, g in gaps.items()} == {
        m: (0.0, 0.0, 0.0) for m in ("normalized_gini", "spearman", "auc")
    }
    # against noise, the model's lead is positive and its interval holds its point
    noise = holdout.Prediction("noise", rng.random(200), rng.random(200))
    perfect = holdout.Prediction("perfect", spend, spend)
    gaps = ceiling.paired_bootstrap(spend, spend > 0, perfect, noise, resamples=50, seed=0)
    for gap in gaps.values():
        assert 0 < gap["low"] <= gap["difference"] <= gap["high"]


def test_every_stored_ceiling_result_s_markdown_is_its_json_rendered() -> None:
    from cdnow import ceiling

    stored = sorted((Path(holdout.REPO) / "bench" / "results").glob("*-cdnow-ceiling*.json"))
    assert stored
    for path in stored:  # only the first line (the command) may be annotated
        written = path.with_suffix(".md").read_text().splitlines()[1:]
        result = json.loads(path.read_text())
        assert ceiling.render(result).splitlines()[1:] == written, path.name

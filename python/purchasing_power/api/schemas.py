"""The API's request and response bodies (what OpenAPI documents)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from purchasing_power.api.settings import MAX_BATCH, USER_ID_MAX_LENGTH, USER_ID_PATTERN

UserId = Annotated[
    str, StringConstraints(min_length=1, max_length=USER_ID_MAX_LENGTH, pattern=USER_ID_PATTERN)
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PublicationInfo(_Body):
    """The publication an answer came from: every answer carries it."""

    publication_id: str
    published_at: dt.datetime = Field(description="When the build published it (UTC).")
    as_of: dt.date = Field(description="The scoring date of its scores.")
    model_version: str = Field(description="The model that scored its users.")


class Reason(_Body):
    """One of the features that move the user's predicted spend most (exact TreeSHAP)."""

    rank: int = Field(description="1 for the largest contribution by size.")
    feature_name: str
    description: str | None = Field(description="The feature's description, as reason text.")
    feature_value: float | None = Field(description="The user's value (null when missing).")
    contribution: float = Field(description="Signed contribution to log(predicted_spend).")
    spend_multiplier: float = Field(description="exp(contribution).")
    is_raising_spend: bool


class LastChange(_Body):
    """The move this build flagged since the user's previous score (threshold in
    seeds/score_change_thresholds.csv, or a tier change): purchasing_power_score_changes."""

    as_of: dt.date
    previous_as_of: dt.date
    previous_model_version: str
    is_model_changed: bool
    direction: Literal["up", "down"]
    previous_power_index: float
    power_index_change: float
    previous_tier: str | None
    is_tier_changed: bool
    tier_rank_change: int | None
    previous_predicted_spend: float


class Score(_Body):
    """A user's current score."""

    user_id: str = Field(description="The id as the caller sent it (raw or pseudonym).")
    as_of: dt.date
    horizon_days: int
    model_version: str
    status: str = Field(description="The model's status: accepted or unproven.")
    predicted_spend: float = Field(description="Expected net spend over the horizon.")
    purchase_probability: float
    power_index: float = Field(description="0-100, higher is more purchasing power.")
    tier: str | None
    segment: str | None = Field(
        description="The user's segment (customer_segments: high_value, at_risk, ...); null"
        " where the publication has none."
    )
    scored_at: dt.datetime
    reasons: list[Reason] | None = Field(
        description="The top reasons; null unless the key holds the reasons scope."
    )
    last_change: LastChange | None = Field(
        description="The move this build flagged, or null where none was."
    )


class ScoreResponse(_Body):
    publication: PublicationInfo
    score: Score


class BatchRequest(_Body):
    """User ids (raw or pseudonyms), at most ``MAX_BATCH``; each is answered in the order
    sent."""

    user_ids: list[UserId] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=f"1 to {MAX_BATCH:,} user ids, answered in the order sent.",
    )


class BatchResult(_Body):
    """One requested user: found with a score, or not_found (as Feast's statuses)."""

    user_id: str
    status: Literal["found", "not_found"]
    score: Score | None


class BatchResponse(_Body):
    publication: PublicationInfo
    results: list[BatchResult]


class HistoryEntry(_Body):
    as_of: dt.date
    model_version: str
    status: str
    predicted_spend: float
    purchase_probability: float
    power_index: float
    tier: str | None
    scored_at: dt.datetime


class HistoryResponse(_Body):
    publication: PublicationInfo
    user_id: str
    history: list[HistoryEntry] = Field(description="Latest first.")


class Decile(_Body):
    method: str
    decile: int
    user_count: int
    mean_predicted_spend: float | None
    mean_actual_spend: float | None
    calibration_ratio: float | None
    lift: float | None
    cumulative_user_share: float | None
    cumulative_spend_capture: float | None


class ModelSummary(_Body):
    """The active model's card metrics against its baselines on the held-out cutoff, and
    its validation deciles (calibration and lift)."""

    publication: PublicationInfo
    model_version: str
    status: str | None
    validation_cutoff_date: dt.date | None
    metrics: dict[str, dict[str, float | None]] = Field(
        description="method (lightgbm is the model) -> metric -> value."
    )
    deciles: list[Decile]


class Health(_Body):
    status: Literal["ok"]


class Readiness(_Body):
    ready: bool
    publication: PublicationInfo | None
    age_seconds: float | None = Field(description="Seconds since the publication was published.")
    users: int | None


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None

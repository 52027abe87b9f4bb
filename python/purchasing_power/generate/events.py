"""Sessions and events: each user's sessions over their active window, the views and
the funnel of each session, purchases with their refunds and reviews, and a ``Shift``
applied to them."""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, replace

import numpy as np

from purchasing_power.generate.population import (
    _Calendar,
    _Cat,
    _choose_items,
    _funnel_probabilities,
    _Items,
    _sample_categories,
    _time_of_day,
    _Users,
)
from purchasing_power.generate.settings import Shift
from purchasing_power.generate.vocabulary import (
    _CART,
    _CLICK,
    _DISCOUNT_SHARE,
    _DISCOUNTS,
    _INT_NULL,
    _NEVER,
    _PAGE_VIEW,
    _PURCHASE,
    _REFUND,
    _REMOVE,
    _REVIEW,
    _REVIEW_TEXTS,
    _SEARCH,
    _SECONDS_PER_DAY,
    _SESSION_ID_MISSING,
)
from purchasing_power.regimes import EVENT_TYPES, Basket, Dropout, Regime


def _shifted(
    events: dict[str, np.ndarray], users: _Users, shift: Shift, start_date: datetime.date
) -> tuple[dict[str, np.ndarray], _Users]:
    """``events`` as the shift changes them: prices scaled and churned users' events
    dropped from the shift's start on; and ``users`` with a churned user's ``churn_sec``
    (ground truth) moved to it."""
    start_sec = (shift.start_date - start_date).days * _SECONDS_PER_DAY
    after = events["time"] >= start_sec
    n_users = len(users.power)
    # every user whose id falls on a multiple of 1 / churn_share: an even spread
    ids = np.arange(n_users)
    churned = np.floor((ids + 1) * shift.churn_share) > np.floor(ids * shift.churn_share)
    users = replace(
        users, churn_sec=np.where(churned, np.minimum(users.churn_sec, start_sec), users.churn_sec)
    )
    kept = ~(after & churned[events["user"]])
    shifted = {name: values[kept] for name, values in events.items()}
    scaled = after[kept]
    for column in ("price", "amount"):
        shifted[column] = np.where(
            scaled, np.round(shifted[column] * shift.price_factor, 2), shifted[column]
        )
    return shifted, users


def _segment_positions(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For segments of the given lengths: owner index, position inside, segment offsets."""
    counts = counts.astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    owner = np.repeat(np.arange(len(counts)), counts)
    inside = np.arange(int(counts.sum()), dtype=np.int64) - offsets[owner]
    return owner, inside, offsets


def _session_starts(
    rng: np.random.Generator, cal: _Calendar, users: _Users
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson number of sessions per user over its active window, seasonal start times.

    Returns user, start second and whether it is the user's sign-up session, chronologically.
    """
    a = users.active_from / _SECONDS_PER_DAY
    b = users.active_to / _SECONDS_PER_DAY
    alive = b > a
    ma = cal.mass(a)
    mb = np.where(alive, cal.mass(b), ma)
    n_poisson = rng.poisson(users.activity * (mb - ma))
    # a user signing up during the period does so in a session at the sign-up time
    signup_session = (users.signup_sec >= 0) & alive
    counts = n_poisson + signup_session
    s_user, inside, _ = _segment_positions(counts)

    x = cal.inverse(ma[s_user] + rng.random(len(s_user)) * (mb - ma)[s_user])
    seasonal = np.floor(x).astype(np.int64) * _SECONDS_PER_DAY + _time_of_day(rng, len(x))
    plain = np.floor(x * _SECONDS_PER_DAY).astype(np.int64)
    lo = users.active_from[s_user]
    hi = users.active_to[s_user] - 1
    t = np.where((seasonal >= lo) & (seasonal <= hi), seasonal, np.clip(plain, lo, hi))
    first_is_signup = signup_session[s_user] & (inside == 0)
    t = np.where(first_is_signup, users.signup_sec[s_user], t)
    order = np.lexsort((s_user, t))  # sessions numbered chronologically
    return s_user[order], t[order], first_is_signup[order]


def _gaps(rng: np.random.Generator, n: int, median_s: float, sigma: float) -> np.ndarray:
    g = rng.lognormal(math.log(median_s), sigma, n)
    return np.clip(np.round(g), 1, 1200).astype(np.int64)


@dataclass(frozen=True, eq=False)
class _World:
    """The fixed frame of one run: the regime, its calendar and its catalogue's categories."""

    regime: Regime
    cal: _Calendar
    cat: _Cat


@dataclass(frozen=True, eq=False)
class _Sessions:
    """One row per session, numbered chronologically."""

    user: np.ndarray
    time: np.ndarray  # start, seconds since start_date
    is_signup: np.ndarray
    channel: np.ndarray
    session_id: np.ndarray  # the logged id (-1: the tracker lost it)
    cat: np.ndarray  # main category
    n_search: np.ndarray
    n_views: np.ndarray

    def __len__(self) -> int:
        return len(self.user)


@dataclass(frozen=True, eq=False)
class _Lines:
    """One row per product viewed, grouped by session, with its funnel outcome."""

    sess: np.ndarray
    offsets: np.ndarray  # first line of each session
    user: np.ndarray
    cat: np.ndarray
    item: np.ndarray
    price: np.ndarray  # unit price shown (after any discount)
    qty: np.ndarray
    clicked: np.ndarray
    carted: np.ndarray
    removed: np.ndarray
    bought: np.ndarray

    def __len__(self) -> int:
        return len(self.sess)


@dataclass(frozen=True, eq=False)
class _Timeline:
    """Times of the browsing events (searches first, then each line's steps) and checkouts."""

    time: np.ndarray  # one per browsing event, sessions one after the other
    session_offsets: np.ndarray  # first browsing event of each session
    line_first: np.ndarray  # browsing event of each line's view
    order: np.ndarray  # order number per session (-1: nothing bought)
    checkout: np.ndarray  # per session


@dataclass(frozen=True, eq=False)
class _Purchases:
    """One row per bought line, logged at its session's checkout."""

    sess: np.ndarray
    user: np.ndarray
    time: np.ndarray
    item: np.ndarray
    cat: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    order: np.ndarray
    session_id: np.ndarray
    channel: np.ndarray

    def __len__(self) -> int:
        return len(self.sess)


def _simulate_events(
    rng: np.random.Generator,
    dropout_rng: np.random.Generator,
    world: _World,
    users: _Users,
    items: _Items,
    prefs_keys: np.ndarray,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Sessions, their view lines and funnel, orders and after-purchase events.

    Returns the recorded events in time order and each user's dropout time (``_NEVER`` when
    the BG/NBD coin never ended the customer).
    """
    sessions = _sessions(rng, world, users, prefs_keys)
    lines = _view_lines(rng, world, sessions, users, items, prefs_keys)
    timeline = _timeline(rng, sessions, lines)
    last_session, dropout_sec = _dropout(
        dropout_rng, sessions, timeline, len(users.power), world.regime.dropout
    )
    purchases = _purchases(sessions, lines, timeline)
    blocks = [
        *_browsing_blocks(sessions, lines, timeline),
        _purchase_block(purchases),
        *_after_purchase_blocks(rng, world.cat, items, purchases),
    ]
    return _record(blocks, world, last_session), dropout_sec


def _sessions(
    rng: np.random.Generator, world: _World, users: _Users, prefs_keys: np.ndarray
) -> _Sessions:
    """Session starts and attributes: channel, logged id, main category, searches, views."""
    basket = world.regime.basket
    s_user, s_time, is_signup = _session_starts(rng, world.cal, users)
    n = len(s_user)
    primary = users.channel[s_user]
    channel = np.where(rng.random(n) < 0.8, primary, rng.integers(0, 3, n))
    has_id = rng.random(n) >= _SESSION_ID_MISSING[channel]
    has_id &= world.regime.recording.session_ids
    return _Sessions(
        user=s_user,
        time=s_time,
        is_signup=is_signup,
        channel=channel,
        session_id=np.where(has_id, np.arange(n), -1),
        cat=_sample_categories(rng, prefs_keys, s_user, world.cat.n),
        n_search=rng.poisson(basket.search_mean, n),
        n_views=_views_per_session(rng, n, basket),
    )


def _views_per_session(rng: np.random.Generator, n: int, basket: Basket) -> np.ndarray:
    """Product views per session: geometric, or 1 + negative binomial (same mean) when the
    regime asks for steadier sessions; at most ``max_views``."""
    if basket.views_dispersion is None:
        views = rng.geometric(basket.view_p, n)
    else:
        k = basket.views_dispersion
        views = 1 + rng.negative_binomial(k, _nb_p(basket.view_p, k), n)
    return np.minimum(views, basket.max_views)


def _nb_p(view_p: float, k: float) -> float:
    """Success probability of the negative binomial(k) with mean ``1 / view_p - 1``."""
    return k / (k + 1.0 / view_p - 1.0)


def _mean_views_per_session(basket: Basket) -> float:
    """E[min(views, max_views)] under the distribution :func:`_views_per_session` draws."""
    k = np.arange(1, basket.max_views + 1)
    if basket.views_dispersion is None:
        pmf = basket.view_p * (1 - basket.view_p) ** (k - 1)
    else:
        r, j = basket.views_dispersion, k - 1
        p = _nb_p(basket.view_p, r)
        log_choose = np.array([math.lgamma(x + r) - math.lgamma(x + 1) - math.lgamma(r) for x in j])
        pmf = np.exp(log_choose + r * math.log(p) + j * math.log1p(-p))
    return float((k * pmf).sum() + basket.max_views * (1 - pmf.sum()))


def _view_lines(
    rng: np.random.Generator,
    world: _World,
    sessions: _Sessions,
    users: _Users,
    items: _Items,
    prefs_keys: np.ndarray,
) -> _Lines:
    """The products each session views (mostly in its main category) and the funnel."""
    regime, cat = world.regime, world.cat
    l_sess, inside, offsets = _segment_positions(sessions.n_views)
    l_user = sessions.user[l_sess]
    n_lines = len(l_sess)
    cross = rng.random(n_lines) < regime.basket.cross_category
    l_cat = sessions.cat[l_sess].copy()
    l_cat[cross] = _sample_categories(rng, prefs_keys, l_user[cross], cat.n)
    l_item = _choose_items(rng, items, l_cat, users.z[l_user])
    discounted = rng.random(n_lines) < _DISCOUNT_SHARE
    discount = np.where(discounted, _DISCOUNTS[rng.integers(0, len(_DISCOUNTS), n_lines)], 0.0)
    l_price = np.round(items.list_price[l_item] * (1.0 - discount), 2)
    p_click, p_cart, p_remove, p_buy = _funnel_probabilities(
        users.power[l_user], users.purchase_rate[l_user], l_price, regime.funnel
    )
    clicked = rng.random(n_lines) < p_click
    carted = clicked & (rng.random(n_lines) < p_cart)
    removed = carted & (rng.random(n_lines) < p_remove)
    bought = carted & ~removed & (rng.random(n_lines) < p_buy)
    # a purchase cohort: the first product of the sign-up session is bought
    forced = (inside == 0) & sessions.is_signup[l_sess] & regime.acquisition.first_session_buys
    return _Lines(
        sess=l_sess,
        offsets=offsets,
        user=l_user,
        cat=l_cat,
        item=l_item,
        price=l_price,
        qty=(1 + rng.poisson(cat.extra_qty[l_cat])).astype(np.int32),
        clicked=clicked | forced,
        carted=carted | forced,
        removed=removed & ~forced,
        bought=bought | forced,
    )


def _timeline(rng: np.random.Generator, sessions: _Sessions, lines: _Lines) -> _Timeline:
    """Browsing event times (searches, then view/click/cart/remove per line) and orders."""
    n_sessions = len(sessions)
    line_events = 1 + lines.clicked.astype(np.int64) + lines.carted + lines.removed
    excl = np.cumsum(line_events) - line_events
    line_pos = sessions.n_search[lines.sess] + excl - excl[lines.offsets[lines.sess]]
    per_session = sessions.n_search + np.bincount(
        lines.sess, weights=line_events, minlength=n_sessions
    )
    per_session = per_session.astype(np.int64)
    b_sess, b_inside, b_offsets = _segment_positions(per_session)
    gaps = _gaps(rng, len(b_sess), 25.0, 0.9)
    gaps[b_inside == 0] = 0
    cum = np.cumsum(gaps)
    b_time = sessions.time[b_sess] + cum - cum[b_offsets[b_sess]]
    last_time = b_time[b_offsets + per_session - 1]
    # orders: all bought lines of a session, at checkout
    has_order = np.bincount(lines.sess, weights=lines.bought, minlength=n_sessions) > 0
    return _Timeline(
        time=b_time,
        session_offsets=b_offsets,
        line_first=b_offsets[lines.sess] + line_pos,
        order=np.where(has_order, np.cumsum(has_order) - 1, -1),
        checkout=last_time + rng.integers(30, 400, n_sessions),
    )


def _dropout(
    rng: np.random.Generator,
    sessions: _Sessions,
    timeline: _Timeline,
    n_users: int,
    dropout: Dropout,
) -> tuple[np.ndarray, np.ndarray]:
    """BG/NBD dropout: after each repeat order a customer leaves with its own probability p.

    Returns each user's last kept session (``len(sessions)``: all kept) and the second it
    dropped out (``_NEVER``: it did not).
    """
    n_sessions = len(sessions)
    last = np.full(n_users, n_sessions, dtype=np.int64)
    dropped_at = np.full(n_users, _NEVER, dtype=np.int64)
    if dropout.after_repeat_order is None:
        return last, dropped_at
    p = rng.beta(*dropout.after_repeat_order, n_users)
    o_sess = np.flatnonzero(timeline.order >= 0)  # chronological
    o_user = sessions.user[o_sess]
    repeat = np.ones(len(o_sess), dtype=bool)
    repeat[np.unique(o_user, return_index=True)[1]] = False  # each user's first order
    drops = repeat & (rng.random(len(o_sess)) < p[o_user])
    np.minimum.at(last, o_user[drops], o_sess[drops])
    gone = last < n_sessions
    dropped_at[gone] = timeline.checkout[last[gone]] + 1
    return last, dropped_at


def _purchases(sessions: _Sessions, lines: _Lines, timeline: _Timeline) -> _Purchases:
    idx = np.flatnonzero(lines.bought)
    sess = lines.sess[idx]
    return _Purchases(
        sess=sess,
        user=lines.user[idx],
        time=timeline.checkout[sess],
        item=lines.item[idx],
        cat=lines.cat[idx],
        price=lines.price[idx],
        qty=lines.qty[idx],
        order=timeline.order[sess],
        session_id=sessions.session_id[sess],
        channel=sessions.channel[sess],
    )


def _browsing_blocks(
    sessions: _Sessions, lines: _Lines, timeline: _Timeline
) -> list[dict[str, np.ndarray]]:
    """Searches, then page_view / product_click / add_to_cart / remove_from_cart."""
    srch_sess, srch_inside, _ = _segment_positions(sessions.n_search)
    blocks = [
        _block(
            _SEARCH,
            sess=srch_sess,
            user=sessions.user[srch_sess],
            time=timeline.time[timeline.session_offsets[srch_sess] + srch_inside],
            cat=sessions.cat[srch_sess],
            session=sessions.session_id[srch_sess],
            channel=sessions.channel[srch_sess],
        )
    ]
    n_lines = len(lines)
    step = np.zeros(n_lines, dtype=np.int64)
    for etype, mask in (
        (_PAGE_VIEW, np.ones(n_lines, dtype=bool)),
        (_CLICK, lines.clicked),
        (_CART, lines.carted),
        (_REMOVE, lines.removed),
    ):
        idx = np.flatnonzero(mask)
        sess = lines.sess[idx]
        with_qty = etype in (_CART, _REMOVE)
        blocks.append(
            _block(
                etype,
                sess=sess,
                user=lines.user[idx],
                time=timeline.time[timeline.line_first[idx] + step[idx]],
                item=lines.item[idx],
                cat=lines.cat[idx],
                price=lines.price[idx],
                qty=lines.qty[idx] if with_qty else None,
                session=sessions.session_id[sess],
                channel=sessions.channel[sess],
            )
        )
        step += mask
    return blocks


def _purchase_block(purchases: _Purchases) -> dict[str, np.ndarray]:
    return _block(
        _PURCHASE,
        sess=purchases.sess,
        user=purchases.user,
        time=purchases.time,
        item=purchases.item,
        cat=purchases.cat,
        price=purchases.price,
        qty=purchases.qty,
        amount=np.round(purchases.price * purchases.qty, 2),
        order=purchases.order,
        session=purchases.session_id,
        channel=purchases.channel,
    )


def _after_purchase_blocks(
    rng: np.random.Generator, cat: _Cat, items: _Items, purchases: _Purchases
) -> list[dict[str, np.ndarray]]:
    """Refunds some days later and reviews whose rating follows item quality (no session)."""
    n_bought = len(purchases)
    quality = items.quality[purchases.item]
    refunded = rng.random(n_bought) < cat.refund_rate[purchases.cat] * np.exp(-0.5 * quality)
    delay = (2.0 + rng.lognormal(math.log(5.0), 0.6, n_bought)) * _SECONDS_PER_DAY
    r_time = purchases.time + delay.astype(np.int64)
    qty = purchases.qty
    partial = (qty > 1) & (rng.random(n_bought) < 0.3)
    r_qty = np.where(partial, 1 + (rng.random(n_bought) * (qty - 1)).astype(np.int32), qty)
    r_qty = r_qty.astype(np.int32)
    ridx = np.flatnonzero(refunded)
    refunds = _block(
        _REFUND,
        sess=purchases.sess[ridx],
        user=purchases.user[ridx],
        time=r_time[ridx],
        item=purchases.item[ridx],
        cat=purchases.cat[ridx],
        price=purchases.price[ridx],
        qty=r_qty[ridx],
        amount=np.round(purchases.price[ridx] * r_qty[ridx], 2),
        order=purchases.order[ridx],
        channel=purchases.channel[ridx],
    )
    # reviews: rating from item quality, refunded lines rate low and review more often
    reviewed = rng.random(n_bought) < np.where(refunded, 0.22, 0.10)
    latent = 4.1 + 0.9 * quality - 2.2 * refunded + rng.normal(0.0, 0.9, n_bought)
    rating = np.clip(np.round(latent), 1, 5).astype(np.int32)
    v_delay = (3.0 + rng.lognormal(math.log(7.0), 0.7, n_bought)) * _SECONDS_PER_DAY
    v_time = np.maximum(
        purchases.time + v_delay.astype(np.int64), np.where(refunded, r_time + 3600, 0)
    )
    text_counts = np.array([len(t) for t in _REVIEW_TEXTS])
    text_offsets = np.concatenate([[0], np.cumsum(text_counts)[:-1]])
    text = text_offsets[rating - 1] + (rng.random(n_bought) * text_counts[rating - 1]).astype(int)
    vidx = np.flatnonzero(reviewed)
    reviews = _block(
        _REVIEW,
        sess=purchases.sess[vidx],
        user=purchases.user[vidx],
        time=v_time[vidx],
        item=purchases.item[vidx],
        cat=purchases.cat[vidx],
        rating=rating[vidx],
        text=text[vidx],
        channel=purchases.channel[vidx],
    )
    return [refunds, reviews]


def _record(
    blocks: list[dict[str, np.ndarray]], world: _World, last_session: np.ndarray
) -> dict[str, np.ndarray]:
    """What the shop's log keeps: its event types and time resolution, inside the period,
    nothing after a user's dropout; in time order (ties keep in-session order)."""
    rec = world.regime.recording
    events = {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
    sess = events.pop("sess")
    events["time"] = events["time"] // rec.time_resolution_s * rec.time_resolution_s
    recorded = np.isin(events["type"], [EVENT_TYPES.index(t) for t in rec.event_types])
    keep = (events["time"] < world.cal.end_sec) & recorded & (sess <= last_session[events["user"]])
    seq = np.arange(len(keep), dtype=np.int64)
    order = np.lexsort((seq[keep], events["time"][keep]))
    kept = np.flatnonzero(keep)[order]
    return {k: v[kept] for k, v in events.items()}


def _block(
    etype: int,
    *,
    sess: np.ndarray,
    user: np.ndarray,
    time: np.ndarray,
    cat: np.ndarray,
    channel: np.ndarray,
    item: np.ndarray | None = None,
    price: np.ndarray | None = None,
    qty: np.ndarray | None = None,
    amount: np.ndarray | None = None,
    order: np.ndarray | None = None,
    session: np.ndarray | None = None,
    rating: np.ndarray | None = None,
    text: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Columns of one event type; ``sess`` is the simulated session it stems from (internal)."""
    n = len(user)

    def filled(values: np.ndarray | None, dtype: type, null: float) -> np.ndarray:
        if values is None:
            return np.full(n, null, dtype=dtype)
        return values.astype(dtype, copy=False)

    return {
        "sess": sess.astype(np.int64, copy=False),
        "user": user.astype(np.int64, copy=False),
        "time": time.astype(np.int64, copy=False),
        "type": np.full(n, etype, dtype=np.int8),
        "item": filled(item, np.int64, -1),
        "cat": cat.astype(np.int16, copy=False),
        "price": filled(price, np.float64, np.nan),
        "qty": filled(qty, np.int32, _INT_NULL),
        "amount": filled(amount, np.float64, np.nan),
        "order": filled(order, np.int64, -1),
        "session": filled(session, np.int64, -1),
        "rating": filled(rating, np.int32, _INT_NULL),
        "text": filled(text, np.int16, -1),
        "channel": channel.astype(np.int8, copy=False),
    }


def _expected_daily_spend(
    rng: np.random.Generator,
    world: _World,
    users: _Users,
    items: _Items,
    prefs_keys: np.ndarray,
) -> np.ndarray:
    """Gross expected purchase amount per active day at average seasonality.

    Monte Carlo over 64 browsing lines per user through the same item choice and funnel
    probabilities as the simulation (sessions/day x views/session x E[value per view]).
    """
    cat, basket = world.cat, world.regime.basket
    n = len(users.z)
    draws = 64
    user = np.repeat(np.arange(n), draws)
    cats = _sample_categories(rng, prefs_keys, user, cat.n)
    item = _choose_items(rng, items, cats, users.z[user])
    mean_discount = _DISCOUNT_SHARE * _DISCOUNTS.mean()
    price = items.list_price[item]
    p_click, p_cart, p_remove, p_buy = _funnel_probabilities(
        users.power[user],
        users.purchase_rate[user],
        price * (1.0 - mean_discount),
        world.regime.funnel,
    )
    value = p_click * p_cart * (1 - p_remove) * p_buy * price * (1 - mean_discount)
    value *= 1.0 + cat.extra_qty[cats]
    per_view = value.reshape(n, draws).mean(axis=1)
    result: np.ndarray = users.activity * _mean_views_per_session(basket) * per_view
    return result


# --------------------------------------------------------------------------------------

"""The model report: one self-contained HTML page (inline SVG and CSS, no scripts, no
external assets) rendered from a model card. Pure: a card in, a string out.

Sections: status, model vs baselines, cumulative gain and lift, decile calibration,
scores by tier, feature importance, ONNX parity.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from typing import Any

MODEL_METHOD = "lightgbm"
PALETTE = {
    "lightgbm": "#1f6feb",
    "bg_nbd_gamma_gamma": "#d97706",
    "rfm": "#16a34a",
    "last_period_spend": "#9333ea",
    "rfm_decay": "#dc2626",
}
TIER_COLOURS = ("#cbd5e1", "#93c5fd", "#60a5fa", "#2563eb", "#1e3a8a", "#0f172a")
METRIC_LABELS = {
    "auc": ("AUC", True),
    "log_loss": ("log loss", False),
    "normalized_gini": ("normalized Gini", True),
    "spearman": ("Spearman", True),
    "top_decile_capture": ("top-decile capture", True),
    "rmse": ("RMSE", False),
    "mae": ("MAE", False),
    "total_bias_percent": ("total bias %", None),
}
WIDTH, HEIGHT = 460, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 44

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #0f172a;
       margin: 0; background: #f8fafc; }
main { max-width: 1020px; margin: 0 auto; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 0 0 10px; }
section { background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; padding: 16px 18px;
          margin: 16px 0; }
.grid { display: flex; flex-wrap: wrap; gap: 16px; } .grid > figure { margin: 0; }
figcaption { font-size: 12px; color: #475569; max-width: 460px; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 999px; font-weight: 600;
         color: #fff; } .accepted { background: #15803d; } .unproven { background: #b91c1c; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e2e8f0; text-align: right; }
th:first-child, td:first-child { text-align: left; } td.best { font-weight: 700; }
.meta { color: #475569; } .legend span { margin-right: 14px; white-space: nowrap; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
          margin-right: 4px; }
svg text { font: 11px system-ui, sans-serif; fill: #334155; }
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "&ndash;"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _colour(method: str) -> str:
    return PALETTE.get(method, "#64748b")


def _legend(methods: Sequence[str], colours: Sequence[str]) -> str:
    items = "".join(
        f'<span><i class="swatch" style="background:{colour}"></i>{_e(method)}</span>'
        for method, colour in zip(methods, colours, strict=True)
    )
    return f'<div class="legend">{items}</div>'


class _Plot:
    """A linear plot area mapping data to SVG coordinates, with ticks and labels."""

    def __init__(self, x_range: tuple[float, float], y_range: tuple[float, float]) -> None:
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range
        self.parts: list[str] = []

    def x(self, value: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return LEFT + (value - self.x0) / span * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return HEIGHT - BOTTOM - (value - self.y0) / span * (HEIGHT - TOP - BOTTOM)

    def axes(
        self,
        x_label: str,
        y_label: str,
        *,
        x_ticks: Sequence[float],
        y_ticks: Sequence[float],
        x_fmt: Callable[[float], str] = str,
        y_fmt: Callable[[float], str] = str,
    ) -> None:
        for tick in y_ticks:
            y = self.y(tick)
            self.parts.append(
                f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                'stroke="#e2e8f0"/>'
                f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_e(y_fmt(tick))}</text>'
            )
        for tick in x_ticks:
            x = self.x(tick)
            self.parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
                f"{_e(x_fmt(tick))}</text>"
            )
        self.parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{HEIGHT - BOTTOM}" '
            f'y2="{HEIGHT - BOTTOM}" stroke="#94a3b8"/>'
            f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 8}" text-anchor="middle">'
            f"{_e(x_label)}</text>"
            f'<text transform="translate(14 {(TOP + HEIGHT - BOTTOM) / 2}) rotate(-90)" '
            f'text-anchor="middle">{_e(y_label)}</text>'
        )

    def polyline(self, points: Sequence[tuple[float, float]], colour: str, **style: str) -> None:
        coordinates = " ".join(f"{self.x(a):.1f},{self.y(b):.1f}" for a, b in points)
        extra = " ".join(f'{key.replace("_", "-")}="{value}"' for key, value in style.items())
        self.parts.append(
            f'<polyline points="{coordinates}" fill="none" stroke="{colour}" '
            f'stroke-width="2" {extra}/>'
        )

    def rect(self, x: float, width: float, y_low: float, y_high: float, colour: str) -> None:
        left, right = self.x(x), self.x(x + width)
        top, bottom = self.y(y_high), self.y(y_low)
        self.parts.append(
            f'<rect x="{left:.1f}" y="{top:.1f}" width="{max(right - left, 0.5):.1f}" '
            f'height="{max(bottom - top, 0):.1f}" fill="{colour}"/>'
        )

    def svg(self, title: str) -> str:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{_e(title)}">'
            f"<title>{_e(title)}</title>{''.join(self.parts)}</svg>"
        )


def _nice_max(value: float) -> float:
    if value <= 0 or math.isnan(value):
        return 1.0
    magnitude: float = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _ticks(top: float, count: int = 5) -> list[float]:
    return [top * i / count for i in range(count + 1)]


def _methods(card: dict[str, Any]) -> list[str]:
    seen: list[str] = []
    for row in card["metrics"]:
        if row["method"] not in seen:
            seen.append(row["method"])
    return seen


def _percent(value: float) -> str:
    return f"{value:.0%}"


def _charted(card: dict[str, Any]) -> list[str]:
    """The methods with gain curves and calibration (the model and the baselines), in
    the metrics' order: the model first (the card's JSON keys are sorted)."""
    return [method for method in _methods(card) if method in card["gain_curves"]]


def _curves(card: dict[str, Any]) -> dict[str, list[float]]:
    return {method: card["gain_curves"][method] for method in _charted(card)}


def gain_chart(card: dict[str, Any]) -> str:
    curves = _curves(card)
    plot = _Plot((0.0, 1.0), (0.0, 1.0))
    plot.axes(
        "share of users, highest predicted spend first",
        "share of actual spend",
        x_ticks=_ticks(1.0),
        y_ticks=_ticks(1.0),
        x_fmt=_percent,
        y_fmt=_percent,
    )
    plot.polyline([(0, 0), (1, 1)], "#94a3b8", stroke_dasharray="4 4")
    for method, curve in curves.items():
        shares = [i / (len(curve) - 1) for i in range(len(curve))]
        plot.polyline(list(zip(shares, curve, strict=True)), _colour(method))
    return plot.svg("Cumulative gain")


def lift_chart(card: dict[str, Any]) -> str:
    curves = _curves(card)
    lifts = {}
    for method, curve in curves.items():
        steps = len(curve) - 1
        lifts[method] = [
            (i / steps, curve[i] / (i / steps)) for i in range(1, steps + 1) if i / steps >= 0.05
        ]
    top = _nice_max(max((value for points in lifts.values() for _, value in points), default=1))
    plot = _Plot((0.0, 1.0), (0.0, top))
    plot.axes(
        "share of users, highest predicted spend first",
        "lift (share of spend / share of users)",
        x_ticks=_ticks(1.0),
        y_ticks=_ticks(top),
        x_fmt=_percent,
        y_fmt=lambda v: f"{v:g}",
    )
    plot.polyline([(0, 1), (1, 1)], "#94a3b8", stroke_dasharray="4 4")
    for method, points in lifts.items():
        plot.polyline(points, _colour(method))
    return plot.svg("Lift")


def calibration_chart(card: dict[str, Any], method: str) -> str:
    rows = sorted(
        (row for row in card["decile_calibration"] if row["method"] == method),
        key=lambda row: row["decile"],
    )
    values = [row["mean_predicted_spend"] for row in rows] + [
        row["mean_actual_spend"] for row in rows
    ]
    top = _nice_max(max((v for v in values if not math.isnan(v)), default=1.0))
    plot = _Plot((0.5, len(rows) + 0.5), (0.0, top))
    plot.axes(
        f"decile of predicted spend ({method})",
        "mean spend per user",
        x_ticks=[row["decile"] for row in rows],
        y_ticks=_ticks(top),
        y_fmt=lambda v: f"{v:,.0f}",
    )
    for row in rows:
        plot.rect(row["decile"] - 0.4, 0.38, 0.0, row["mean_predicted_spend"], _colour(method))
        plot.rect(row["decile"] + 0.02, 0.38, 0.0, row["mean_actual_spend"], "#94a3b8")
    return plot.svg(f"Decile calibration, {method}")


def tier_chart(card: dict[str, Any]) -> str:
    histogram = card["scores"]["spend_histogram"]
    edges = histogram["log10_edges"]
    # in tier order (the card's JSON keys are sorted by name)
    counts = {row["tier"]: histogram["counts"][row["tier"]] for row in card["scores"]["tiers"]}
    totals = [sum(column) for column in zip(*counts.values(), strict=True)] or [0]
    top = _nice_max(max(totals))
    plot = _Plot((edges[0], edges[-1]), (0.0, top))
    low, high = math.floor(edges[0]), math.ceil(edges[-1])
    plot.axes(
        "predicted spend over the horizon (log scale)",
        "users",
        x_ticks=list(range(low, high + 1)),
        y_ticks=_ticks(top),
        x_fmt=lambda v: f"{10**v:,.0f}" if v >= 0 else f"{10**v:g}",
        y_fmt=lambda v: f"{v:,.0f}",
    )
    for i in range(len(edges) - 1):
        base = 0.0
        for colour, tier_counts in zip(TIER_COLOURS, counts.values(), strict=False):
            if tier_counts[i]:
                plot.rect(edges[i], edges[i + 1] - edges[i], base, base + tier_counts[i], colour)
            base += tier_counts[i]
    return plot.svg("Scoring rows by predicted spend and tier")


def importance_chart(card: dict[str, Any], head: str, *, top: int = 12) -> str:
    rows = sorted(
        (row for row in card["feature_importance"] if row["head"] == head),
        key=lambda row: -row["gain"],
    )
    total = sum(row["gain"] for row in rows) or 1.0
    rows = rows[:top]
    bar_height, label_width, width = 18, 300, WIDTH + 110
    height = 24 + bar_height * len(rows)
    # a head of single-leaf trees (a tiny shop, early stopping at once) has no gain at all
    largest = max((row["gain"] / total for row in rows), default=0.0) or 1.0
    scale = (width - label_width - 56) / largest
    parts = []
    for i, row in enumerate(rows):
        share = row["gain"] / total
        y = 8 + i * bar_height
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 12}" text-anchor="end">'
            f"{_e(row['feature_name'])}</text>"
            f'<rect x="{label_width}" y="{y + 2}" width="{share * scale:.1f}" '
            f'height="{bar_height - 5}" fill="#1f6feb"/>'
            f'<text x="{label_width + share * scale + 4:.1f}" y="{y + 12}">{share:.1%}</text>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="importance {_e(head)}">'
        f"<title>Feature importance (gain), {_e(head)}</title>{''.join(parts)}</svg>"
    )


def metrics_table(card: dict[str, Any]) -> str:
    """Every method's means over the folds, a method a row (nine methods and more fit a
    page's width as rows, not as columns), the best of each metric in bold."""
    methods = _methods(card)
    values = {(row["method"], row["metric"]): row["value"] for row in card["metrics"]}
    best: dict[str, str | None] = {}
    for metric, (_, higher_is_better) in METRIC_LABELS.items():
        present = {m: values[(m, metric)] for m in methods if (m, metric) in values}
        finite = {m: v for m, v in present.items() if not math.isnan(v)}
        best[metric] = None
        if finite and higher_is_better is not None:
            pick = max if higher_is_better else min
            best[metric] = pick(finite, key=finite.__getitem__)
        elif finite:
            best[metric] = min(finite, key=lambda m: abs(finite[m]))
    header = "".join(f"<th>{_e(label)}</th>" for label, _ in METRIC_LABELS.values())
    rows = "".join(
        f"<tr><td>{_e(method)}</td>"
        + "".join(
            f'<td class="{"best" if method == best[metric] else ""}">'
            f"{_fmt(values.get((method, metric)))}</td>"
            for metric in METRIC_LABELS
        )
        + "</tr>"
        for method in methods
    )
    return f"<table><tr><th>method</th>{header}</tr>{rows}</table>"


def folds_table(card: dict[str, Any]) -> str:
    """AUC and normalized Gini of every method on every fold's validation cutoff."""
    folds = [fold["validation_cutoff"] for fold in card.get("folds", [])]
    values = {
        (row["method"], row["metric"], row["validation_cutoff"]): row["value"]
        for row in card.get("fold_metrics", [])
    }
    header = "".join(
        f"<th>{_e(fold)} {_e(metric)}</th>" for fold in folds for metric in ("AUC", "Gini")
    )
    rows = "".join(
        f"<tr><td>{_e(method)}</td>"
        + "".join(
            f"<td>{_fmt(values.get((method, metric, fold)))}</td>"
            for fold in folds
            for metric in ("auc", "normalized_gini")
        )
        + "</tr>"
        for method in _methods(card)
    )
    return f"<table><tr><th>method</th>{header}</tr>{rows}</table>"


def tier_table(card: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td><i class='swatch' style='background:{colour}'></i>{_e(row['tier'])}</td>"
        f"<td>{row['users']:,}</td><td>{_fmt(row['mean_predicted_spend'], 2)}</td>"
        f"<td>{_fmt(row['mean_purchase_probability'])}</td></tr>"
        for colour, row in zip(TIER_COLOURS, card["scores"]["tiers"], strict=False)
    )
    return (
        "<table><tr><th>tier</th><th>users</th><th>mean predicted spend</th>"
        f"<th>mean purchase probability</th></tr>{rows}</table>"
    )


def parity_table(card: dict[str, Any]) -> str:
    parity = card["parity"]
    rows = []
    for graph in ("tree_ensemble", "tensor"):
        if graph not in parity:
            continue
        for head, name, metric in (
            ("purchase", "purchase", "max_abs_diff"),
            ("spend", "spend", "max_rel_diff"),
            ("spend: purchase_probability", "purchase_probability", "max_abs_diff"),
        ):
            figure = parity[graph].get(name)
            if figure is None:  # cards written before the gate checked this output
                continue
            rows.append(
                f"<tr><td>{graph}</td><td>{parity[graph].get('execution_provider', '')}</td>"
                f"<td>{head}</td><td>{figure['rows']:,}</td>"
                f"<td>{figure[metric]:.2g}</td><td>{figure['edge_cases']['rows']:,}</td>"
                f"<td>{figure['edge_cases'][metric]:.2g}</td>"
                f"<td>{parity[graph]['tier_changes']}</td>"
                f"<td>{parity[graph].get('tier_boundary_rows', 0)}</td></tr>"
            )
    return (
        "<table><tr><th>graph</th><th>ran on</th><th>head</th><th>rows</th><th>max diff</th>"
        "<th>edge-case rows</th><th>max diff</th><th>tier changes</th>"
        "<th>rows on a tier bound</th></tr>"
        f"{''.join(rows)}</table>"
        "<p class='meta'>Purchase: absolute difference in probability (gate 1e-9); spend: "
        "relative difference (gate 1e-9). Edge cases: every split threshold exactly, just "
        "below and just above, and zero, tiny, huge, infinite and missing values in every "
        "feature. Rows on a tier bound: the power index sits on a tier bound in one engine "
        "and within 1e-9 of it in the other; they are not counted as tier changes. The "
        "tensor graph, which scores on CUDA only, is gated on the leading validation and "
        "scoring rows when there are many (its rows column).</p>"
    )


def render_report(card: dict[str, Any]) -> str:
    """The report page of one model card."""
    status = card["status"]
    methods = _charted(card)
    legend = _legend(methods, [_colour(method) for method in methods])
    reasons = "".join(f"<li>{_e(reason)}</li>" for reason in card.get("status_reasons", []))
    status_note = (
        f"<p>Not accepted: it does not beat every baseline on AUC and normalized Gini.</p>"
        f"<ul>{reasons}</ul>"
        if status != "accepted"
        else "<p>Accepted: it beats every baseline on AUC and normalized Gini.</p>"
    )
    chosen = (
        f"<p>Scoring method: {_e(card.get('method', 'lightgbm_hurdle'))}; the best candidate "
        f"(lightgbm in the tables): {_e(card.get('best_candidate', 'lightgbm_hurdle'))}. The "
        "method with the highest mean over the folds of (AUC + normalized Gini) / 2 among the "
        "candidates and the baselines that can score is the one that scores.</p>"
    )
    folds = ", ".join(
        f"{fold['validation_cutoff']} (fitted on {', '.join(fold['training_cutoffs'])})"
        for fold in card.get("folds", [])
    ) or _e(card["validation_cutoff"])
    calibration = "".join(
        f"<figure>{calibration_chart(card, method)}</figure>" for method in methods
    )
    heads = sorted({row["head"] for row in card["feature_importance"]})
    importance = "".join(
        f"<figure>{importance_chart(card, head)}<figcaption>{_e(head)} head</figcaption></figure>"
        for head in heads
    )
    tier_legend = _legend(
        [row["tier"] for row in card["scores"]["tiers"]],
        list(TIER_COLOURS[: len(card["scores"]["tiers"])]),
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Model report {_e(card["model_version"])}</title>
<style>{CSS}</style></head>
<body><main>
<h1>{_e(card["model_version"])} <span class="badge {_e(status)}">{_e(status)}</span></h1>
<p class="meta">Scores as of {_e(card["as_of"])} for the next {_e(card["horizon_days"])} days.
Trained on cutoffs {_e(", ".join(card["training_cutoffs"]))}; validated on rolling-origin
folds: {_e(folds)}; the latest fold has {card["training_rows"]:,} training and
{card["validation_rows"]:,} validation rows. {_e(card.get("form", ""))}.
Created {_e(card["created_at"])}.</p>
<section><h2>Status</h2>{status_note}{chosen}</section>
<section><h2>Candidates and baselines, mean over the folds</h2>{metrics_table(card)}
<p class="meta">Bold: the best method for the metric. AUC and log loss judge the purchase
probability; the others judge predicted spend against actual net spend.</p></section>
<section><h2>Each fold</h2>{folds_table(card)}<p class="meta">Each fold fits on the cutoffs
whose labels end by its validation cutoff and is judged on that cutoff.</p></section>
<section><h2>Cumulative gain and lift</h2>{legend}<div class="grid">
<figure>{gain_chart(card)}<figcaption>How much of the next {_e(card["horizon_days"])} days'
spend the users ranked highest hold; the dashed diagonal is a random order.</figcaption></figure>
<figure>{lift_chart(card)}<figcaption>Lift: how many times the average spend the top share
holds.</figcaption></figure></div></section>
<section><h2>Decile calibration</h2><p class="meta">Mean predicted spend (colour) and mean
actual spend (grey) per decile of predicted spend, on the latest fold's validation cutoff.</p>
<div class="grid">{calibration}</div></section>
<section><h2>Scores by tier</h2>{tier_legend}<div class="grid">
<figure>{tier_chart(card)}<figcaption>The {card["scores"]["rows"]:,} scoring rows at
{_e(card["as_of"])}, by predicted spend, coloured by power tier.</figcaption></figure>
<div>{tier_table(card)}</div></div></section>
<section><h2>Feature importance (gain)</h2><div class="grid">{importance}</div></section>
<section><h2>ONNX parity with LightGBM</h2>{parity_table(card)}</section>
</main></body></html>
"""

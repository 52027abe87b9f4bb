"""The `purchasing-power` command: one verb per step, no logic here."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated, Literal, cast

import typer
from rich.console import Console
from rich.table import Table

from purchasing_power import generate as generator
from purchasing_power import summary as build_summary
from purchasing_power import warehouse

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console()
errors = Console(stderr=True)

WarehouseOption = Annotated[
    Path | None,
    typer.Option("--db", help="Warehouse file; default $PURCHASING_POWER_DB or the embedded one."),
]


def _fail(message: str) -> None:
    errors.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code=1)


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Folder to write events, users, items into.")],
    users: Annotated[int, typer.Option(min=1)] = 20_000,
    days: Annotated[
        int | None, typer.Option(min=1, help="History length; default the preset's (365 days).")
    ] = None,
    seed: int = 42,
    start_date: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")] = "2025-01-01",
    file_format: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    dirty_fraction: Annotated[float, typer.Option(min=0.0, max=0.5)] = 0.002,
    preset: Annotated[
        str, typer.Option(help="Kind of shop: default, grocery, cdnow, fashion or young.")
    ] = "default",
    shift_date: Annotated[
        str | None, typer.Option(help="A change of behaviour from this day on, YYYY-MM-DD.")
    ] = None,
    shift_price_factor: Annotated[
        float, typer.Option(min=0.01, help="Prices from --shift-date on are multiplied by it.")
    ] = 1.0,
    shift_churn_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of customers who leave on it.")
    ] = 0.0,
) -> None:
    """Write synthetic shop data in the input contract (and a ground-truth file)."""
    if file_format not in ("parquet", "csv"):
        _fail(f"--format must be parquet or csv, not {file_format!r}")
    if preset not in generator.PRESETS:
        _fail(f"--preset must be one of {', '.join(generator.PRESETS)}, not {preset!r}")
    try:
        first_day = dt.date.fromisoformat(start_date)
    except ValueError:
        _fail(f"--start-date must be YYYY-MM-DD, not {start_date!r}")
    shift = None
    if shift_date is not None:
        try:
            shift = generator.Shift(
                dt.date.fromisoformat(shift_date),
                price_factor=shift_price_factor,
                churn_share=shift_churn_share,
            )
        except ValueError:
            _fail(f"--shift-date must be YYYY-MM-DD, not {shift_date!r}")
    settings = generator.GeneratorSettings(
        users=users,
        days=days,
        seed=seed,
        start_date=first_day,
        file_format=cast(Literal["parquet", "csv"], file_format),  # checked above
        dirty_fraction=dirty_fraction,
        preset=cast(generator.Preset, preset),  # checked above
        shift=shift,
    )
    with console.status(f"generating a {preset} shop of {users:,} users"):
        result = generator.generate(out, settings=settings)
    console.print(
        f"wrote {result.events:,} events, {result.users:,} users, {result.items:,} items "
        f"to {result.out_dir}"
    )


@app.command()
def summary(db: WarehouseOption = None) -> None:
    """Print what the last build did: rows in and out, tiers, model vs baseline."""
    path = db or warehouse.warehouse_path()
    try:
        with warehouse.connect(path) as connection:
            report = build_summary.read_summary(connection, warehouse=path)
    except Exception as error:  # a missing file or table: one line, non-zero exit
        _fail(f"{path}: {error}")
    console.print(build_summary.render_summary(report), highlight=False, soft_wrap=True)


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="A SQL query against the warehouse.")],
    db: WarehouseOption = None,
) -> None:
    """Run one read-only SQL query against the warehouse and print the result."""
    path = db or warehouse.warehouse_path()
    try:
        with warehouse.connect(path) as connection:
            columns, rows = warehouse.query(connection, sql)
    except Exception as error:
        _fail(f"{path}: {error}")
    table = Table(*columns)
    for row in rows:
        table.add_row(*("" if value is None else str(value) for value in row))
    console.print(table)


@app.command()
def train(
    artifacts: Annotated[
        Path, typer.Option(help="The model registry folder (dbt var artifacts_path).")
    ] = Path("artifacts"),
    tune_trials: Annotated[
        int, typer.Option(min=0, help="Optuna trials per head on the time split (0: none).")
    ] = 0,
    seed: int = 42,
    max_boost_rounds: Annotated[
        int, typer.Option(min=1, help="The most trees each head grows (dbt var max_boost_rounds).")
    ] = 50,  # train.MAX_BOOST_ROUNDS (not imported here: it would load LightGBM)
    db: WarehouseOption = None,
) -> None:
    """Train and register a model from a built warehouse (as `dbt build` with retrain)."""
    from purchasing_power import pipeline  # LightGBM, ONNX, SciPy: only for this verb

    path = db or warehouse.warehouse_path()
    try:
        with (
            warehouse.connect(path) as connection,
            console.status("training, exporting, proving parity"),
        ):
            registered = pipeline.train_from_warehouse(
                connection,
                artifacts_dir=artifacts,
                seed=seed,
                tune_trials=tune_trials,
                max_boost_rounds=max_boost_rounds,
            )
    except Exception as error:
        _fail(f"{path}: {error}")
    console.print(
        f"registered {registered.model_version} ({registered.status}) at {registered.path}; "
        "the next `dbt build` scores with it if it is the latest accepted model"
    )


@app.command()
def report(
    out: Annotated[Path, typer.Option(help="HTML file to write.")] = Path("model_report.html"),
    model_version: Annotated[
        str | None, typer.Option(help="A registered version; default the active model.")
    ] = None,
    db: WarehouseOption = None,
) -> None:
    """Write the model report (self-contained HTML) of the active or a given model, and
    its monitoring page beside it (<out>_monitoring.html)."""
    from purchasing_power import monitoring_report, pipeline

    path = db or warehouse.warehouse_path()
    monitoring_out = out.with_name(f"{out.stem}_monitoring{out.suffix}")
    try:
        with warehouse.connect(path) as connection:
            version, page = pipeline.model_report(connection, model_version=model_version)
            monitoring = monitoring_report.read_monitoring(connection)
        out.write_text(page)
        monitoring_out.write_text(monitoring_report.render_monitoring_page(monitoring))
    except Exception as error:
        _fail(f"{path}: {error}")
    console.print(
        f"wrote the report of {version} to {out}, its monitoring page to {monitoring_out}"
    )


KeysFileOption = Annotated[
    Path | None,
    typer.Option(
        "--keys-file",
        envvar="PURCHASING_POWER_API_KEYS",
        help="API keys file; default api_keys.json in the user's config folder.",
    ),
]
keys_app = typer.Typer(no_args_is_help=True, help="Manage the scoring API's keys.")
app.add_typer(keys_app, name="keys")


@app.command()
def serve(
    bi_db: Annotated[
        Path | None,
        typer.Option(
            "--bi-db",
            help="The published BI copy; default $PURCHASING_POWER_BI_DB or beside the warehouse.",
        ),
    ] = None,
    host: Annotated[str, typer.Option(envvar="PURCHASING_POWER_API_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PURCHASING_POWER_API_PORT", min=1, max=65535)] = 8000,
    keys_file: KeysFileOption = None,
    allow_anonymous: Annotated[
        bool, typer.Option(help="Answer without an API key (local use only; warns).")
    ] = False,
    rate: Annotated[
        float, typer.Option(min=0.001, help="Requests a second per key, unless the key says.")
    ] = 50.0,
    burst: Annotated[int, typer.Option(min=1, help="Requests a key may save up.")] = 100,
    poll_seconds: Annotated[
        float, typer.Option(min=0.05, help="How often to look for a new publication or keys.")
    ] = 1.0,
    history_days: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="The latest as_of dates of score history held in memory (default 30, or "
            "$PURCHASING_POWER_API_HISTORY_DAYS); older ones are read from the file.",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    access_log: bool = False,
) -> None:
    """Serve the published BI copy read-only over HTTP (the scoring API)."""
    from purchasing_power import api  # FastAPI and uvicorn: only for this verb

    try:
        settings = api.ApiSettings.from_environment(
            database=bi_db,
            keys_file=keys_file,
            host=host,
            port=port,
            allow_anonymous=allow_anonymous,
            rate_per_second=rate,
            burst=burst,
            poll_seconds=poll_seconds,
            history_days=history_days,
        )
    except ValueError as error:
        _fail(str(error))
    if log_level not in ("debug", "info", "warning", "error"):
        _fail(f"--log-level must be debug, info, warning or error, not {log_level!r}")
    if allow_anonymous:
        errors.print(
            "[yellow]warning:[/yellow] --allow-anonymous: answering every request without an "
            "API key. Use it locally only.",
            highlight=False,
        )
    elif not any(not key.is_revoked for key in api.read_keys(settings.keys_file).values()):
        errors.print(
            f"[yellow]warning:[/yellow] no live API key in {settings.keys_file}: every request "
            "will be refused until `purchasing-power keys add` makes one.",
            highlight=False,
        )
    api.serve(settings, log_level=log_level, access_log=access_log)


@keys_app.command("add")
def keys_add(
    name: Annotated[str, typer.Option(help="Who the key is for (unique among live keys).")],
    scopes: Annotated[
        str, typer.Option(help="Comma-separated: scores, reasons, history, model, metrics, health.")
    ],
    rate: Annotated[
        float | None, typer.Option(min=0.001, help="Requests a second; default the server's.")
    ] = None,
    burst: Annotated[int | None, typer.Option(min=1, help="Default the server's.")] = None,
    keys_file: KeysFileOption = None,
) -> None:
    """Create a key and print it once: only its salted hash is stored."""
    from purchasing_power.api import keys

    path = keys_file or keys.default_keys_file()
    try:
        created = keys.add_key(
            path, name=name, scopes=keys.parse_scopes(scopes), rate_per_second=rate, burst=burst
        )
    except (ValueError, OSError) as error:
        _fail(f"{path}: {error}")
    errors.print(
        f"added key {name!r} ({', '.join(created.record.scopes)}) to {path}; "
        "it is shown once, below:",
        highlight=False,
    )
    print(created.token)


@keys_app.command("list")
def keys_list(keys_file: KeysFileOption = None) -> None:
    """List the keys (names, scopes, limits, state; never the keys)."""
    from purchasing_power.api import keys

    path = keys_file or keys.default_keys_file()
    try:
        stored = keys.read_keys(path)
    except (ValueError, OSError, TypeError) as error:
        _fail(f"{path}: {error}")
    table = Table("name", "key id", "scopes", "rate/s", "burst", "created", "revoked")
    for key in sorted(stored.values(), key=lambda key: key.created_at):
        table.add_row(
            key.name, key.key_id, ",".join(key.scopes),
            "default" if key.rate_per_second is None else f"{key.rate_per_second:g}",
            "default" if key.burst is None else str(key.burst),
            key.created_at, key.revoked_at or "",
        )  # fmt: skip
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    name: Annotated[str, typer.Option(help="The live key to revoke.")],
    keys_file: KeysFileOption = None,
) -> None:
    """Revoke a key: a running server refuses it from its next poll on."""
    from purchasing_power.api import keys

    path = keys_file or keys.default_keys_file()
    try:
        revoked = keys.revoke_key(path, name=name)
    except (ValueError, OSError) as error:
        _fail(f"{path}: {error}")
    console.print(f"revoked key {revoked.name!r} ({revoked.key_id}) in {path}")


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())

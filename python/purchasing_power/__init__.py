"""purchasing-power: per-user purchasing-power scores from e-commerce behaviour events.

The public face: what the CLI, the dbt Python models (``models/**/*.py``) and the docs
call, importable from here. Each name is imported from its module on first use, so that
``import purchasing_power`` (the dbt plugin, the CLI's quick verbs) loads neither
LightGBM, ONNX nor SciPy.

Three verbs share their name with a module of the package and stay in it, because the
module's name wins once it is imported: ``purchasing_power.generate.generate`` (the demo
shop), ``purchasing_power.publish.publish`` (the BI copy) and
``purchasing_power.pipeline.explain`` (the reasons; ``purchasing_power.explain`` is
their TreeSHAP module). The scoring API has a face of its own, ``purchasing_power.api``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from purchasing_power.generate import PRESETS, GeneratorSettings, Shift
    from purchasing_power.monitoring import (
        performance_table,
        profiles_table,
        read_retrain_reasons,
        references_table,
        validation_figures,
    )
    from purchasing_power.monitoring_report import read_monitoring, render_monitoring_page
    from purchasing_power.pipeline import (
        RunSettings,
        choose_and_train,
        model_report,
        models_table,
        say_to_dbt,
        train_from_warehouse,
    )
    from purchasing_power.publish import PublishSettings, database_path
    from purchasing_power.scoring import stream_scores
    from purchasing_power.summary import read_summary, render_summary
    from purchasing_power.warehouse import connect, query, warehouse_path

__all__ = [
    "PRESETS",
    "GeneratorSettings",
    "PublishSettings",
    "RunSettings",
    "Shift",
    "choose_and_train",
    "connect",
    "database_path",
    "model_report",
    "models_table",
    "performance_table",
    "profiles_table",
    "query",
    "read_monitoring",
    "read_retrain_reasons",
    "read_summary",
    "references_table",
    "render_monitoring_page",
    "render_summary",
    "say_to_dbt",
    "stream_scores",
    "train_from_warehouse",
    "validation_figures",
    "warehouse_path",
]

# name -> the module (of this package) that defines it
_HOMES = {
    "PRESETS": "generate",
    "GeneratorSettings": "generate",
    "Shift": "generate",
    "performance_table": "monitoring",
    "profiles_table": "monitoring",
    "read_retrain_reasons": "monitoring",
    "references_table": "monitoring",
    "validation_figures": "monitoring",
    "read_monitoring": "monitoring_report",
    "render_monitoring_page": "monitoring_report",
    "RunSettings": "pipeline",
    "choose_and_train": "pipeline",
    "model_report": "pipeline",
    "models_table": "pipeline",
    "say_to_dbt": "pipeline",
    "train_from_warehouse": "pipeline",
    "PublishSettings": "publish",
    "database_path": "publish",
    "stream_scores": "scoring",
    "read_summary": "summary",
    "render_summary": "summary",
    "connect": "warehouse",
    "query": "warehouse",
    "warehouse_path": "warehouse",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

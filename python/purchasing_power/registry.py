"""The model registry: ``artifacts/<model_version>/`` with ONNX files, LightGBM text
models, a JSON card and an HTML report; it stores and lists them. A model is exported
(``model_graphs``), proven equal to LightGBM (``parity``), and only then written
(``registration``); nothing half-written is ever listed (the folder is
renamed into place, and a version registered again moved aside whole first). A
registration killed midway leaves a hidden staged folder, which the next build
removes (``remove_leftovers``; registrations to one folder take turns).

Files of a model version:

``purchase.onnx`` / ``spend.onnx``
    ``ai.onnx.ml`` TreeEnsemble graphs (double precision). ``spend.onnx`` is the whole
    model: both tree ensembles and how they combine, so that it returns expected spend
    (``P x E[spend | purchase]`` for a hurdle, the spend head's prediction for the
    direct combination) and the purchase probability; it is what CPU scoring runs.
    ``purchase.onnx`` is the purchase head alone.
``purchase.tensor.onnx`` / ``spend.tensor.onnx``
    The same models as standard-operator graphs, for onnxruntime's CUDA execution
    provider; they pass the same gate.
``purchase.lgb.txt`` / ``spend_given_purchase.lgb.txt``
    The LightGBM models (explanations read these).
``card.json``, ``report.html``
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb

from purchasing_power import report, staging
from purchasing_power.export import GraphKind
from purchasing_power.train import HEADS as BOOSTER_HEADS
from purchasing_power.train import HURDLE, Heads

HEADS = ("purchase", "spend")
GRAPH_SUFFIX = {"tree_ensemble": ".onnx", "tensor": ".tensor.onnx"}
# A registration's staged folder (tempfile.mkdtemp's ".<model_version>-<8 characters>"):
# what a registration killed before its end leaves, and the next one removes.
STAGED = re.compile(r"\.pp-\d{8}-[0-9a-f]{12}-[a-z0-9_]{8}")


@dataclass(frozen=True)
class RegisteredModel:
    model_version: str
    path: Path
    card: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.card["status"])


def store(
    model_version: str,
    *,
    card: dict[str, Any],
    exported: Mapping[GraphKind, Mapping[str, bytes]],
    heads: Heads,
    artifacts_dir: Path,
) -> RegisteredModel:
    """Write a version's files (``exported``: each graph kind's files by head; the
    LightGBM models, the card and its HTML report) to ``artifacts_dir/<model_version>/``: all
    of them or, where a write fails or is killed, none (staged under a hidden name, then
    renamed into place; a version stored again is moved aside whole first)."""
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    final_path = artifacts_dir / model_version
    with staging.only_writer(artifacts_dir):  # two builds may share the registry
        staging.remove(staging.leftovers([artifacts_dir], STAGED))
        staged = _staged_folder(model_version, artifacts_dir)
        replaced = None
        try:
            for graph, files in exported.items():
                for head, content in files.items():
                    (staged / f"{head}{GRAPH_SUFFIX[graph]}").write_bytes(content)
            for head in BOOSTER_HEADS:
                heads.booster(head).save_model(str(staged / card["lightgbm_files"][head]))
            (staged / "card.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
            (staged / "report.html").write_text(report.render_report(card))
            if final_path.exists():
                # moved aside whole (a folder renamed over an empty one), never deleted
                # in place: a kill leaves the old version or the new one, not half of one
                replaced = _staged_folder(model_version, artifacts_dir)
                os.replace(final_path, replaced)
            os.replace(staged, final_path)
        finally:
            staging.remove(folder for folder in (staged, replaced) if folder is not None)
    return RegisteredModel(model_version=model_version, path=final_path, card=card)


def _staged_folder(model_version: str, artifacts_dir: Path) -> Path:
    """A new empty folder with a hidden name that ``STAGED`` matches."""
    return Path(tempfile.mkdtemp(prefix=f".{model_version}-", dir=artifacts_dir))


def remove_leftovers(artifacts_dir: Path) -> None:
    """Remove what registrations killed before their end left in ``artifacts_dir``: the
    hidden folders they staged, and never a registered version."""
    if artifacts_dir.is_dir():
        with staging.only_writer(artifacts_dir):
            staging.remove(staging.leftovers([artifacts_dir], STAGED))


def load_heads(model: RegisteredModel) -> Heads:
    """The LightGBM models of a registered version."""
    files = model.card["lightgbm_files"]
    return Heads(
        **{head: lgb.Booster(model_file=str(model.path / files[head])) for head in BOOSTER_HEADS},
        combination=model.card.get("combination", HURDLE),
    )


def list_models(artifacts_dir: Path) -> list[RegisteredModel]:
    """Every registered model, oldest first."""
    if not artifacts_dir.is_dir():
        return []
    models = []
    for card_path in sorted(artifacts_dir.glob("*/card.json")):
        if card_path.parent.name.startswith("."):
            continue
        card = json.loads(card_path.read_text())
        models.append(RegisteredModel(card["model_version"], card_path.parent, card))
    return sorted(models, key=lambda model: (model.card["created_at"], model.model_version))

"""Time lleaves, the LLVM-compiled LightGBM scorer, on rows saved by ``bench/run.py``.

lleaves 1.3 needs llvmlite below 0.45, and the project's numba needs llvmlite 0.50, so
lleaves runs in an environment of its own (``.venv-lleaves``, from ``bench/lleaves.lock``,
which ``make bench`` installs) and this script is all that runs there:

    .venv-lleaves/bin/python bench/lleaves_score.py MODEL.txt ROWS.npy THREADS REPEAT OUT.npy

It compiles the model (cached next to OUT), times ``predict`` the way ``measure.best_time``
does (the best of REPEAT calls after one warm-up), saves the predictions to OUT and prints
``{"seconds": best}``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import lleaves  # type: ignore[import-not-found]
import numpy as np


def main() -> None:
    model_file, rows, threads, repeat, out = sys.argv[1:]
    features = np.load(rows)
    model = lleaves.Model(model_file=model_file)
    model.compile(cache=str(Path(out).with_suffix(".lleaves.o")))
    predictions = model.predict(features, n_jobs=int(threads))
    best = float("inf")
    for _ in range(int(repeat)):
        start = time.perf_counter()
        predictions = model.predict(features, n_jobs=int(threads))
        best = min(best, time.perf_counter() - start)
    np.save(out, predictions)
    print(json.dumps({"seconds": best}))


if __name__ == "__main__":
    main()

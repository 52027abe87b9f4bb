"""Time lleaves, the LLVM-compiled LightGBM scorer, on rows saved by ``bench/run.py``.

lleaves 1.3 needs llvmlite below 0.45, and the project's numba needs llvmlite 0.50, so
lleaves runs in an environment of its own (``.venv-lleaves``, from ``bench/lleaves.lock``,
which ``make bench`` installs) and this script is all that runs there:

    .venv-lleaves/bin/python bench/lleaves_score.py MODEL.txt ROWS.npy THREADS REPEAT OUT.npy

It compiles the model (cached next to OUT), times ``predict`` with ``measure.best_time``
(the best of REPEAT calls after one warm-up; ``measure`` needs nothing outside the
standard library), saves the predictions to OUT and prints ``{"seconds": best}``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lleaves  # type: ignore[import-not-found]
import numpy as np

from measure import best_time


def main() -> None:
    model_file, rows, threads, repeat, out = sys.argv[1:]
    features = np.load(rows)
    model = lleaves.Model(model_file=model_file)
    model.compile(cache=str(Path(out).with_suffix(".lleaves.o")))
    best, predictions = best_time(lambda: model.predict(features, n_jobs=int(threads)), int(repeat))
    np.save(out, predictions)
    print(json.dumps({"seconds": best}))


if __name__ == "__main__":
    main()

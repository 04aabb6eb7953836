"""Writes units_reference.json: the arithmetic units' training, as a funcbench version computed it.

The shipped file was made by funcbench 0.4.0 (commit 61fbfa2), the last
version whose units were one `kind`-dispatched stacked layer; run it from
a checkout of that commit::

    python tests/data/make_units_reference.py tests/data/units_reference.json

`tests/test_units.py` trains the same cells with today's units and
compares, feeding the cells trained by steps 0.4's fresh batches (numpy
streams; today's come from torch generators). It uses only API both
versions share.
"""

import json
import sys

from benchmark.config import RunConfig
from benchmark.data import sample_splits
from benchmark.plan import build_plan
from benchmark.plugins import load_registry
from benchmark.train import train_cell

MODELS = "nac,nac_mul,nalu,nau,nmu,nac[hidden=2],nalu[hidden=2],nau[hidden=2],nmu[hidden=2]"
RUNS = {
    "epochs": dict(targets="addition,product", epochs=10),
    "steps": dict(targets="binary_op[op=mul,range=1:2],binary_op[op=add,range=-2:2]", steps=400, eval_every=50,
                  batch_size=64, learning_rate=1e-2),
}


def trained() -> dict:
    registry = load_registry()
    out = {}
    for run, options in RUNS.items():
        plan = build_plan(registry, RunConfig(models=MODELS, seeds=3, samples=300, eval_samples=200, **options))
        for cell in plan.cells:
            splits = sample_splits(cell.target, cell.seeds, cell.samples, cell.eval_samples,
                                   validation=cell.settings.by_steps)
            done = train_cell(cell, splits)
            out[f"{run}|{cell.target.label}|{cell.model.label}"] = {
                "monitored": {name: mse.tolist() for name, mse in done.log.monitored.items()},
                "kept_step": done.log.kept_step.tolist(),
                "parameters": done.model.readable_parameters(),
            }
    return out


if __name__ == "__main__":
    with open(sys.argv[1], "w") as f:
        json.dump(trained(), f, indent=1, sort_keys=True)

"""Side-by-side speed measurements: the article's own loop against funcbench.

Run with ``make perf``. Everything is measured in this one process (the
default run in a child process, since it is a whole command), on the same
machine and workload, and reported as medians over repeats and as ratios;
absolute seconds depend on the machine and its load, ratios much less.

1. The article's workload: addition, one linear unit, 1000 samples in [0, 1),
   Adam lr 0.1, batch 200 reshuffled each epoch, 100 epochs. The article's
   loop (a per-sample Dataset and a DataLoader) against funcbench's
   vectorised trainer with 1, 10 and 100 seeds in one cell: seconds per
   trained model.
2. The wall time of the default ``bench run --targets all``, report included.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn, optim

from benchmark.data import sample_splits
from benchmark.plan import RunConfig, build_plan
from benchmark.plugins import load_registry
from benchmark.train import train_cell


def article_loop(seed: int) -> float:
    """The article's training code, as published, for one model; returns seconds."""
    np.random.seed(seed)
    torch.manual_seed(seed)
    x_train = np.random.rand(1000, 2).astype(np.float32)
    y_train = np.sum(x_train, axis=1, keepdims=True).astype(np.float32)

    class Dataset(torch.utils.data.Dataset):
        def __init__(self, x, y):
            super().__init__()
            self.x, self.y = x, y

        def __len__(self):
            return 1000

        def __getitem__(self, idx):
            return torch.FloatTensor(self.x[idx]), self.y[idx]

    start = time.perf_counter()
    dataloader = torch.utils.data.DataLoader(Dataset(x_train, y_train), batch_size=200, shuffle=True)
    model = nn.Linear(2, 1)
    criterion = nn.MSELoss()
    optimizer = optim.Adam(model.parameters(), lr=0.1)
    for _ in range(100):
        total_loss = 0.0
        for x, y in dataloader:
            loss = criterion(model(x), y)
            total_loss += loss.item()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    seconds = time.perf_counter() - start
    weights = model.weight.detach().numpy()[0]
    assert np.allclose(weights, [1, 1], atol=1e-3), f"the article's loop did not learn addition: {weights}"
    return seconds


def funcbench_cell(seeds: int) -> float:
    """Seconds to train one addition x linear cell with `seeds` seeds (data drawn beforehand)."""
    plan = build_plan(load_registry(), RunConfig(targets="addition", models="linear", seeds=seeds))
    cell = plan.cells[0]
    splits = sample_splits(cell.target, cell.seeds, cell.samples, cell.eval_samples)
    return train_cell(cell, splits).seconds


def default_run() -> float:
    """Wall seconds of `bench run --targets all` in a fresh process, into a temporary folder."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "benchmark", "run", "--targets", "all", "--out", out],
            check=True, stdout=subprocess.DEVNULL,
        )
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="repeats per measurement (median reported)")
    parser.add_argument("--skip-default-run", action="store_true", help="skip timing the default bench run")
    parser.add_argument("--json", type=Path, default=Path("perf.json"), help="where to write the figures")
    args = parser.parse_args()

    funcbench_cell(1)  # the first torch call pays one-off start-up costs; keep them out of both sides
    article = statistics.median(article_loop(seed) for seed in range(args.repeats))
    rows = [{"workload": "article loop, 1 model", "seconds_per_model": article, "speed-up": 1.0}]
    for seeds in (1, 10, 100):
        cell = statistics.median(funcbench_cell(seeds) for _ in range(args.repeats))
        rows.append(
            {"workload": f"funcbench, {seeds} seeds in one cell", "seconds_per_model": cell / seeds,
             "speed-up": article / (cell / seeds)}
        )
    figures = {"machine": platform.platform(), "torch": torch.__version__, "threads": torch.get_num_threads(),
               "repeats": args.repeats, "article_workload": rows}
    print(f"machine: {figures['machine']}, torch {figures['torch']}, {figures['threads']} threads, median of {args.repeats}")
    print(f"{'workload':<36} {'s/model':>10} {'speed-up':>9}")
    for row in rows:
        print(f"{row['workload']:<36} {row['seconds_per_model']:>10.5f} {row['speed-up']:>8.1f}x")
    if not args.skip_default_run:
        figures["default_run_seconds"] = default_run()
        print(f"default `bench run --targets all`: {figures['default_run_seconds']:.1f} s wall")
    args.json.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()

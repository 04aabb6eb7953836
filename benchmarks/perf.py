"""Side-by-side speed measurements: funcbench against the loops it replaces, and against the machine.

Run with ``make perf`` (about 20 minutes on 2 cores; ``--quick`` skips the
100-seed default run). Everything is measured in this one run, on the same
machine and load, and reported as medians over repeats and as ratios:
absolute seconds depend on the machine and its load, ratios much less.

1. The article's workload: addition, one linear unit, 1000 samples in [0, 1),
   Adam lr 0.1, batch 200 reshuffled each epoch, 100 epochs. The article's
   loop (a per-sample Dataset and a DataLoader) against funcbench's trainer
   with 1, 10 and 100 seeds in one cell: seconds per trained model.
2. scikit-learn's MLPRegressor (one hidden layer of 64 ReLU units, Adam lr
   1e-3, batch 200, 100 epochs, no L2 penalty, no early stop) against
   funcbench's `mlp[width=64,depth=1]` on the same workload (1000 samples of
   `product`) with 1, 10 and 100 seeds: seconds per trained model.
3. The floating-point rate of a wide MLP ensemble cell, counted from its
   shapes (forward, backward and the periodic evaluations), as a fraction of
   the machine's fp32 matrix-multiply rate (the best of square torch.mm of
   1024, 2048 and 4096, same threads), measured here.
4. The default ``bench run --targets all`` in a child process: wall time and
   peak memory, how the wall time grows with the seeds (1, 5, 25, 100) and
   with the number of targets (1, 4, all 13), and the default (one worker
   process per core) against ``--jobs 1``.
5. The two ways a torch family runs its members, at 25 and 100 seeds on
   the single-layer protocol (x1 * x2 on U[1, 2], fresh batches of 128): a
   plain one-seed module run through `torch.func.vmap` (how a plugin's
   module runs) against the built-in stacked `mlp` and `nau`; and today's
   units, one small class each, against funcbench 0.4's `kind`-dispatched
   stacked layer (`benchmarks/perf_models.py`): seconds per cell and ratios.

The figures are printed as a table and written to ``perf.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import goals
import numpy as np
import torch
from torch import nn, optim

from benchmark.config import RunConfig
from benchmark.data import sample_splits
from benchmark.model import TrainSettings
from benchmark.plan import build_plan
from benchmark.plugins import load_registry
from benchmark.train import train_cell

SEEDS = (1, 10, 100)


def median_of(repeats: int, measure: Callable[[], float]) -> float:
    """The median of `repeats` measurements after one unmeasured warm-up (as pytest-benchmark's warmup_rounds=1).

    The first call of a workload pays one-off costs (the allocator growing
    the heap for its tensors, lazy imports), which a loop of many cells pays
    once; both sides of every comparison get the same warm-up.
    """
    measure()
    return statistics.median(measure() for _ in range(repeats))


def article_loop(seed: int = 0) -> float:
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


def funcbench_cell(targets: str, models: str, seeds: int, **settings) -> float:
    """Seconds to train one cell with `seeds` seeds (its data drawn beforehand, evaluation not included)."""
    plan = build_plan(load_registry(), RunConfig(targets=targets, models=models, seeds=seeds, **settings))
    cell = plan.cells[0]
    splits = sample_splits(cell.target, cell.seeds, cell.samples, cell.eval_samples)
    return train_cell(cell, splits).seconds


#: Model families written for the comparisons of workload 5, loaded as a plugin file.
PERF_MODELS = str(Path(__file__).with_name("perf_models.py"))
#: (label, reference model, compared model, steps): the generic path against the stacked one,
#: and today's units against 0.4's.
MODEL_PATHS = [
    ("mlp: vmap / stacked", "mlp[width=64,depth=1]", "plain_mlp", 300),
    ("nau: vmap / stacked", "nau", "plain_nau", 1000),
    *((f"{unit}: now / 0.4", f"legacy_{unit}", unit, 1000) for unit in ("nac", "nac_mul", "nalu", "nau", "nmu")),
]


def protocol_cell(model: str, seeds: int, steps: int) -> float:
    """Seconds to train one cell of the single-layer protocol (shortened), its data drawn beforehand."""
    plan = build_plan(load_registry([PERF_MODELS]), RunConfig(
        targets="binary_op[op=mul]", models=model, seeds=seeds, steps=steps, eval_every=steps // 4, batch_size=128,
        eval_samples=1000, learning_rate=1e-3, plugins=(PERF_MODELS,)))
    cell = plan.cells[0]
    splits = sample_splits(cell.target, cell.seeds, cell.samples, cell.eval_samples, validation=True)
    return train_cell(cell, splits).seconds


def sklearn_mlp(seed: int = 0) -> float:
    """MLPRegressor on funcbench's `product` sample: 64 ReLU units, Adam, batch 200, exactly 100 epochs."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    cell = build_plan(load_registry(), RunConfig(targets="product", models="linear", seeds=1)).cells[0]
    train = sample_splits(cell.target, (seed,), 1000, 10)[0]
    x, y = train.x[0].astype(np.float64), train.y[0, :, 0]
    model = MLPRegressor(hidden_layer_sizes=(64,), solver="adam", learning_rate_init=1e-3, batch_size=200,
                         max_iter=100, alpha=0.0, tol=0.0, n_iter_no_change=1000, random_state=seed)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # it stops at its 100 epochs, as asked
        model.fit(x, y)
    seconds = time.perf_counter() - start
    assert model.n_iter_ == 100, model.n_iter_
    return seconds


def matmul_rate(repeats: int, sizes: tuple[int, ...] = (1024, 2048, 4096)) -> float:
    """The machine's fp32 matrix-multiply rate (FLOP/s): the best size's median over repeats.

    The best of several sizes, since the library's kernels do not reach their
    peak at every size, and the fraction reported against it should not flatter.
    """

    def rate(n: int) -> float:
        a, b = torch.randn(n, n), torch.randn(n, n)

        def once() -> float:
            start = time.perf_counter()
            a @ b
            return 2 * n**3 / (time.perf_counter() - start)

        return median_of(repeats, once)

    return max(rate(n) for n in sizes)


def mlp_flops(widths: list[int], seeds: int, samples: int, batch: int, epochs: int, eval_points: int) -> float:
    """Floating-point operations of training an MLP ensemble by epochs, counted from its shapes.

    A forward pass costs 2 x in x out per layer and point; a training step
    costs three (forward; backward to the weights; backward to the layer's
    input, skipped for the first layer); every evaluation is one forward
    pass over the monitored points. Activations and Adam are left out.
    """
    layers = list(zip(widths, widths[1:]))
    forward = sum(2 * a * b for a, b in layers)
    backward = sum(2 * a * b for a, b in layers) + sum(2 * a * b for a, b in layers[1:])
    steps_points = epochs * samples  # every sample once per epoch
    settings = TrainSettings(epochs=epochs, batch_size=batch)
    total, interval = settings.total_steps(samples), settings.evaluation_interval(samples)
    evaluations = 1 + total // interval + (total % interval != 0)  # before training, every interval, at the end
    return seeds * (steps_points * (forward + backward) + evaluations * eval_points * forward)


def default_run(*options: str) -> dict:
    """Wall seconds and peak memory of `bench run --targets all OPTIONS` in a fresh process."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "benchmark", "run", "--targets", "all", "--out", out, *options]
        start = time.perf_counter()
        # /usr/bin/time would also do; reading the child's rusage keeps this portable to macOS.
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
    if child.returncode != 0:
        raise SystemExit(f"`{' '.join(command)}` exited with code {child.returncode}")
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is in bytes on macOS, KiB on Linux
    # The largest resident size of the run or any of its worker processes, not their sum.
    return {"options": " ".join(options), "seconds": seconds, "peak_memory_gib": usage.ru_maxrss * scale / 2**30}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="repeats per short measurement (median reported)")
    parser.add_argument("--quick", action="store_true", help="leave out the default run with 100 seeds")
    parser.add_argument("--skip-default-run", action="store_true", help="leave out every default run")
    parser.add_argument("--skip-suite", action="store_true",
                        help="leave out the published single-layer benchmark's run (about half an hour on 2 cores)")
    parser.add_argument("--skip-feynman", action="store_true",
                        help="leave out the AI Feynman suite's run (about ten minutes on 2 cores)")
    parser.add_argument("--only-feynman", action="store_true", help="measure the AI Feynman suite's goal alone")
    parser.add_argument("--only-goals", action="store_true", help="measure the goals (workload 6) alone")
    parser.add_argument("--json", type=Path, default=Path("perf.json"), help="where to write the figures")
    args = parser.parse_args()
    r = args.repeats
    figures: dict = {"machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                                 "cpus": os.cpu_count()},
                     "torch": torch.__version__, "threads": torch.get_num_threads(), "repeats": r}
    if args.only_feynman:
        figures["goals"] = {"feynman_suite": goals.feynman_suite()}
        save(figures, args.json)
        goals.print_feynman(figures["goals"]["feynman_suite"])
        print(f"\nfigures written to {args.json}")
        return
    article = median_of(r, article_loop)
    if args.only_goals:
        figures["goals"] = goals.measure(article, r, suite=not args.skip_suite, feynman=not args.skip_feynman)
        save(figures, args.json)
        goals.print_goals(figures["goals"])
        print(f"\nfigures written to {args.json}")
        return
    rows = [{"workload": "article loop", "seeds": 1, "seconds_per_model": article, "speed_up": 1.0}]
    for seeds in SEEDS:
        cell = median_of(r, lambda: funcbench_cell("addition", "linear", seeds))
        rows.append({"workload": "funcbench linear", "seeds": seeds, "seconds_per_model": cell / seeds,
                     "speed_up": article / (cell / seeds)})
    figures["article_workload"] = rows
    save(figures, args.json)

    sklearn = median_of(r, sklearn_mlp)
    rows = [{"workload": "MLPRegressor", "seeds": 1, "seconds_per_model": sklearn, "speed_up": 1.0}]
    for seeds in SEEDS:
        cell = median_of(r, lambda: funcbench_cell("product", "mlp[width=64,depth=1]", seeds, learning_rate=1e-3))
        rows.append({"workload": "funcbench mlp[width=64,depth=1]", "seeds": seeds, "seconds_per_model": cell / seeds,
                     "speed_up": sklearn / (cell / seeds)})
    figures["mlp_workload"] = rows
    save(figures, args.json)

    rate = matmul_rate(max(r, 5))
    wide = {"model": "mlp[width=512,depth=2]", "target": "sine", "seeds": 16, "epochs": 20}
    seconds = median_of(r, lambda: funcbench_cell(wide["target"], wide["model"], wide["seeds"], epochs=wide["epochs"]))
    # 1000 samples, batch 200; the monitored splits are train, interpolation, near and far (1000 points each).
    flops = mlp_flops([1, 512, 512, 1], wide["seeds"], 1000, 200, wide["epochs"], 4000)
    figures["flop_rate"] = {**wide, "seconds": seconds, "gflops": flops / seconds / 1e9,
                            "matmul_gflops": rate / 1e9, "fraction_of_matmul": flops / seconds / rate}
    save(figures, args.json)

    figures["model_paths"] = []
    for label, reference, compared, steps in MODEL_PATHS:
        for seeds in (25, 100):
            before = median_of(r, lambda: protocol_cell(reference, seeds, steps))
            after = median_of(r, lambda: protocol_cell(compared, seeds, steps))
            figures["model_paths"].append({"comparison": label, "reference": reference, "compared": compared,
                                           "seeds": seeds, "steps": steps, "reference_seconds": before,
                                           "compared_seconds": after, "ratio": after / before})
        save(figures, args.json)

    if not args.skip_default_run:
        figures["default_runs"] = []
        variants = [(), *(("--seeds", str(n)) for n in ((1, 25) if args.quick else (1, 25, 100))),
                    ("--targets", "addition"), ("--targets", "addition,subtraction,product,division"),
                    ("--jobs", "1"),  # against the default (one worker process per core)
                    ("--pdf",)]  # what drawing every figure again as PDF costs
        for options in variants:
            figures["default_runs"].append(default_run(*options))
            save(figures, args.json)  # a long run killed half-way keeps what it measured
    figures["goals"] = goals.measure(article, r, suite=not args.skip_suite, feynman=not args.skip_feynman)
    save(figures, args.json)
    print_table(figures)
    goals.print_goals(figures["goals"])
    print(f"\nfigures written to {args.json}")


def save(figures: dict, path: Path) -> None:
    path.write_text(json.dumps(figures, indent=2) + "\n")


def print_table(figures: dict) -> None:
    machine = figures["machine"]
    print(f"machine: {machine['processor']}, {machine['cpus']} CPUs, {machine['platform']}; torch {figures['torch']}, "
          f"{figures['threads']} threads; medians of {figures['repeats']}")
    for name in ("article_workload", "mlp_workload"):
        print(f"\n{'workload':<34} {'seeds':>5} {'s/model':>10} {'speed-up':>9}")
        for row in figures[name]:
            print(f"{row['workload']:<34} {row['seeds']:>5} {row['seconds_per_model']:>10.5f} {row['speed_up']:>8.1f}x")
    f = figures["flop_rate"]
    print(f"\n{f['model']} x {f['seeds']} seeds on {f['target']}, {f['epochs']} epochs: {f['seconds']:.2f} s, "
          f"{f['gflops']:.1f} GFLOP/s = {100 * f['fraction_of_matmul']:.0f}% of the fp32 matmul rate "
          f"({f['matmul_gflops']:.1f} GFLOP/s)")
    print(f"\n{'single-layer protocol, one cell':<24} {'seeds':>5} {'steps':>6} {'reference s':>12} "
          f"{'compared s':>11} {'ratio':>6}")
    for row in figures["model_paths"]:
        print(f"{row['comparison']:<24} {row['seeds']:>5} {row['steps']:>6} {row['reference_seconds']:>12.3f} "
              f"{row['compared_seconds']:>11.3f} {row['ratio']:>6.2f}")
    if "default_runs" in figures:
        print(f"\n{'bench run --targets all':<44} {'wall s':>8} {'peak GiB':>9}")
        for run in figures["default_runs"]:
            print(f"{run['options'] or '(defaults: 5 seeds)':<44} {run['seconds']:>8.1f} {run['peak_memory_gib']:>9.2f}")


if __name__ == "__main__":
    main()

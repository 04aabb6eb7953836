"""pytest-benchmark versions of `make perf`'s side-by-side workloads.

Kept out of the default test run (``testpaths`` is ``tests``, and
``--benchmark-skip`` is on); run them with ``make perf-pytest``, which is
``pytest benchmarks -o addopts= --benchmark-only``. Compare the groups'
medians: each pair is the same workload, done the reference way and by
funcbench with 100 seeds (divide funcbench's time by 100 for one model).
"""

import pytest
from perf import article_loop, funcbench_cell, sklearn_mlp


@pytest.mark.benchmark(group="article workload: addition, linear unit, 100 epochs")
def test_article_loop_one_model(benchmark):
    benchmark.pedantic(article_loop, rounds=3, warmup_rounds=1)


@pytest.mark.benchmark(group="article workload: addition, linear unit, 100 epochs")
def test_funcbench_one_hundred_models(benchmark):
    benchmark.pedantic(funcbench_cell, args=("addition", "linear", 100), rounds=3, warmup_rounds=1)


@pytest.mark.benchmark(group="MLP workload: 64 hidden units, batch 200, 100 epochs")
def test_mlpregressor_one_model(benchmark):
    benchmark.pedantic(sklearn_mlp, rounds=3, warmup_rounds=1)


@pytest.mark.benchmark(group="MLP workload: 64 hidden units, batch 200, 100 epochs")
def test_funcbench_mlp_one_hundred_models(benchmark):
    benchmark.pedantic(funcbench_cell, args=("product", "mlp[width=64,depth=1]", 100), kwargs={"learning_rate": 1e-3},
                       rounds=3, warmup_rounds=1)

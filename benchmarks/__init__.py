"""Benchmarks of aufacs against the official code: scripts that print markdown tables, not tests.

Run each from the repository root as a module, e.g. ``python -m benchmarks.bench_jaa_step``;
``docs/benchmarks.md`` gives every figure with the command that produced it.

- :mod:`.timing`: the machine description, interleaved timing and the markdown tables the
  scripts share;
- :mod:`.official_jaa_net`, :mod:`.official_jaa_code`, :mod:`.official_me_graph_au`: the
  official-layout reference implementations that the tests and the benchmarks compare aufacs
  with (the first two for JAA-Net v1, the last for ME-GraphAU);
- ``bench_*`` and ``train_small``: the benchmark scripts.

The package is not part of the aufacs distribution (``pyproject.toml`` packages ``aufacs*``
only); the tests import it from the repository root (pytest's ``pythonpath = ["."]``).
"""

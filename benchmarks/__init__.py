"""Benchmarks of colocam-plugin: ``python -m benchmarks --list`` shows them.

Each ``bench_<name>.py`` is a standalone script that writes
``<out>/<name>.json`` and ``<name>.md`` (figures plus versions, device,
threads, git commit and machine load, see :mod:`benchmarks._common`);
``python -m benchmarks NAME ...`` runs them by name.
"""

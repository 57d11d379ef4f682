"""Pipelines: one per experiment kind (config -> data + model -> Trainer -> evaluation -> report).

Each sub-package holds the schemas of its experiments (``config.py``, torch-free) and one module per
experiment with its ``run(config, run_dir)``; :mod:`qml_imaging.registry` maps experiment names to them.
"""

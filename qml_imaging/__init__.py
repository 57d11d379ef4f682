"""qml-imaging.

``qml_imaging.load_model(run_dir, fit=None)`` returns a run's trained model (see
:mod:`qml_imaging.training.artifacts`); it is imported on first use, so ``import qml_imaging`` stays
torch-free. ``qml_imaging.__version__`` is the installed distribution's version (package metadata).
"""

from qml_imaging.environment import toolkit_version

__version__: str = toolkit_version()


def __getattr__(name: str):
    if name in ("load_model", "TrainedModel"):
        from qml_imaging.training import artifacts

        return getattr(artifacts, name)
    raise AttributeError(f"module 'qml_imaging' has no attribute {name!r}")


__all__ = ["load_model", "TrainedModel", "__version__"]


def __dir__() -> list[str]:
    return sorted(__all__)

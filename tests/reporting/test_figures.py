import subprocess
import sys

import numpy as np
from matplotlib.figure import Figure

from qml_imaging.reporting import figures

# every module that draws: importing them must leave a notebook's backend alone
DRAWING_MODULES = [
    "qml_imaging", "qml_imaging.cli", "qml_imaging.cli_g2", "qml_imaging.reporting.figures",
    "qml_imaging.pipelines.diffusion.figures", "qml_imaging.pipelines.qcrb.figures",
    "qml_imaging.pipelines.qcrb.parametric", "qml_imaging.pipelines.qcrb.natural",
    "qml_imaging.pipelines.inr.image", "qml_imaging.pipelines.inr.signal", "qml_imaging.pipelines.g2.scan",
    "qml_imaging.pipelines.g2.regression", "qml_imaging.pipelines.g2.measured",
    "qml_imaging.pipelines.generation.pipeline",
]


def test_importing_the_package_leaves_the_matplotlib_backend_unchanged():
    script = (
        "import importlib, matplotlib\n"
        "matplotlib.use('svg')\n"
        f"for name in {DRAWING_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "print(matplotlib.get_backend())\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["svg"]


def test_builders_return_figures_that_save_as_png(tmp_path):
    built = [
        figures.image_grid([[np.zeros((4, 4)), np.ones((4, 4))], [np.eye(4)]], column_titles=["a", "b"],
                           row_titles=["r0", "r1"], value_range=(0.0, 1.0)),
        figures.curves({"loss": ([1, 2, 3], [1.0, 0.5, 0.25])}, xlabel="epoch", ylabel="MSE"),
        figures.scatter({"fit": ([0.1, 0.2], [0.1, 0.25])}, xlabel="true", ylabel="estimated"),
        figures.grouped_bars({"camera": {"QIREN": 0.8, "SIREN": 1.0}}, ylabel="ratio"),
    ]
    for index, figure in enumerate(built):
        assert isinstance(figure, Figure)
        path = figures.save_figure(figure, tmp_path / f"figure{index}.png")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"figure{i}.png" for i in range(4)]
    grid_axes = built[0].axes
    assert len(grid_axes) == 4 and not grid_axes[3].axison

"""The lab-file library (fits and scans of measured files) loads no training code."""

import subprocess
import sys

PROBE = """
import sys
from qml_imaging.cli import main
status = main(["g2", *sys.argv[1:]])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchmetrics") or m.startswith((
                "qml_imaging.training", "qml_imaging.models", "qml_imaging.pipelines.g2.measured",
                "qml_imaging.pipelines.artifacts")))
print("STATUS", status, "LOADED", loaded[:5])
"""


def probe(*arguments: str) -> str:
    """What ``qml-imaging g2 ARGUMENTS`` loads, run in a fresh interpreter (nothing imported before it)."""
    result = subprocess.run([sys.executable, "-c", PROBE, *arguments], capture_output=True, text=True, check=True,
                            timeout=300)
    return result.stdout + result.stderr


def test_g2_fit_of_a_csv_imports_no_torch_and_no_training_code(tmp_path):
    csv = tmp_path / "one.csv"
    csv.write_text("delay_ns,counts\n" + "".join(f"{d},{40 if d else 10}\n" for d in range(-20, 21)))
    output = probe("fit", str(csv), "--zero", "0", "--baseline", "tails", "--out", str(tmp_path / "fits.csv"))
    assert "STATUS 0 LOADED []" in output, output


def test_g2_scan_of_histograms_imports_no_torch_and_no_training_code(tmp_path):
    import numpy as np

    delays = np.arange(-30.0, 31.0)
    mean = 50 * (1 - 0.8 * np.exp(-np.abs(delays) / 4))
    counts = np.random.default_rng(0).poisson(np.broadcast_to(mean, (2, 2, len(delays))))
    np.savez(tmp_path / "scan.npz", counts=counts, delay_ns=delays, singles=np.full((2, 2, 2), 223607.0), seconds=1.0)
    output = probe("scan", str(tmp_path), "--out", str(tmp_path / "maps"))
    assert "STATUS 0 LOADED []" in output, output
    assert (tmp_path / "maps" / "maps.npz").is_file()


PULSED = """
import sys
from qml_imaging.cli import main
main(["g2", "fit", sys.argv[1], "--mode", "pulsed", "--side-peaks", "2", "--out", sys.argv[2]])
print("TORCH", "torch" in sys.modules)
"""


def test_reading_time_tags_and_a_pulsed_fit_import_no_torch(tmp_path):
    import numpy as np

    from tests.data.photon_sources import pulsed_photons, write_t3

    times, detector, _ = pulsed_photons(np.random.default_rng(0), 0.2, 20_000, 2000, 200_000)
    write_t3(tmp_path / "p.ptu", times, detector, 20_000)
    result = subprocess.run([sys.executable, "-c", PULSED, str(tmp_path / "p.ptu"), str(tmp_path / "fits.csv")],
                            capture_output=True, text=True, check=True, timeout=300)
    assert "pulsed g2(0) = " in result.stdout and "TORCH False" in result.stdout, result.stdout + result.stderr

"""README "Use your own data": every command of the section runs on files this test writes."""

import re
import shlex

import numpy as np

from qml_imaging.cli import main
from tests.conftest import REPO_ROOT
from tests.data.test_files import write_cello_like_wav, write_rgb_png, write_tiff16
from tests.pipelines.test_own_diffusion import write_png_folder


def readme_section() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    return text.split("## Use your own data", 1)[1].split("\n## ", 1)[0]


def test_every_command_of_the_readme_section_runs_on_files_the_test_writes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_rgb_png(tmp_path / "photo.png")
    write_tiff16(tmp_path / "micro.tif")
    write_cello_like_wav(tmp_path / "cello.wav")
    write_png_folder(tmp_path / "my_pngs")
    section = readme_section()
    for block in re.findall(r"```yaml\n(.*?)```", section, re.S):
        name = block.splitlines()[0].removeprefix("# ").strip()
        (tmp_path / name).write_text(block)
    commands = [line.split("  #")[0] for block in re.findall(r"```bash\n(.*?)```", section, re.S)
                for line in block.splitlines() if line.startswith("qml-imaging ")]
    assert len(commands) == 7
    for command in commands:
        assert main(shlex.split(command)[1:]) == 0, command
    assert np.load(tmp_path / "renders" / "photo_qiren_seed0_64x64.npy").shape == (64, 64, 3)
    assert (tmp_path / "renders" / "qiren_seed0_4000.wav").is_file()
    samples = np.load(tmp_path / "samples" / "samples.npy")
    assert samples.shape == (16, 1, 32, 32) and -1 <= samples.min() and samples.max() <= 1
    import json

    qcrb = json.loads((tmp_path / "runs" / "qcrb" / "report.json").read_text())
    assert set(qcrb["summary"]["mse_over_sql"]) == {"mine/unet"}
    assert qcrb["details"]["folders"]["mine"]["files"] == 12


def test_a_qcrb_folder_with_too_few_images_is_a_clear_error(tmp_path, capsys):
    write_png_folder(tmp_path / "few", count=3)
    config = tmp_path / "few.yaml"
    block = re.findall(r"```yaml\n(# my_qcrb.yaml.*?)```", readme_section(), re.S)[0]
    config.write_text(block.replace("path: my_pngs", f"path: {tmp_path / 'few'}"))
    assert main(["run", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "has 3 images, fewer than train_images + test_images (10 + 2)" in capsys.readouterr().err

"""Images are read by what they declare: colour model, planar layout, orientation; the size is checked first."""

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps

from qml_imaging.data.image_decoding import _orient
from qml_imaging.data.images import load_image, read_image
from qml_imaging.limits import MAX_IMAGE_PIXELS


def orange(height=32, width=32):
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[...] = (200, 50, 20)
    return pixels


def test_a_cmyk_jpeg_is_converted_to_rgb_as_pillow_does(tmp_path):
    """f22: a CMYK JPEG was taken for RGBA, its C, M, Y read as R, G, B (a colour negative)."""
    path = tmp_path / "orange_cmyk.jpg"
    Image.fromarray(orange()).convert("CMYK").save(path, quality=100)
    reference = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)[16, 16] / 255
    image, info = read_image(path)
    assert image.shape == (3, 32, 32)
    assert np.allclose(image[:, 16, 16].numpy(), reference, atol=1e-6)
    assert info["colour"] == "CMYK converted to RGB (Pillow Image.convert)"
    grey, info = load_image(path, 8)
    luma = 0.299 * reference[0] + 0.587 * reference[1] + 0.114 * reference[2]
    assert float(grey[0, 4, 4]) == pytest.approx(2 * luma - 1, abs=2e-3)
    assert info["preprocessing"].startswith("CMYK converted to RGB")


def test_grey_with_alpha_and_palette_pngs_are_read_as_grey_and_rgb(tmp_path):
    grey = (np.arange(24 * 20).reshape(24, 20) % 256).astype(np.uint8)
    Image.fromarray(np.stack([grey, np.full_like(grey, 128)], -1), mode="LA").save(tmp_path / "la.png")
    image, info = read_image(tmp_path / "la.png")
    assert image.shape == (1, 24, 20) and np.allclose(image[0].numpy(), grey / 255)
    assert info["colour"] == "LA: alpha dropped (grey kept)"
    Image.fromarray(orange(8, 8)).convert("P").save(tmp_path / "palette.png")
    image, info = read_image(tmp_path / "palette.png")
    assert image.shape == (3, 8, 8) and "P converted to RGB" in info["colour"]
    reference = np.asarray(Image.open(tmp_path / "palette.png").convert("RGB"))[0, 0]
    assert np.allclose(image[:, 0, 0].numpy() * 255, reference)


def test_a_planar_rgb_tiff_is_one_rgb_image(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 65535, (3, 20, 30), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "planar.tif", pixels, photometric="rgb", planarconfig="separate")
    image, info = read_image(tmp_path / "planar.tif", "type_max")
    assert image.shape == (3, 20, 30)
    assert np.allclose(image.numpy(), pixels / 65535, atol=1e-7)
    assert "planar samples moved to the last axis" in info["colour"]


def test_a_miniswhite_tiff_is_inverted_and_a_cmyk_tiff_refused(tmp_path):
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8)
    tifffile.imwrite(tmp_path / "white.tif", pixels, photometric="miniswhite")
    image, info = read_image(tmp_path / "white.tif")
    assert np.allclose(image[0].numpy(), (255 - pixels) / 255) and "MINISWHITE inverted" in info["colour"]
    tifffile.imwrite(tmp_path / "cmyk.tif", np.zeros((8, 8, 4), np.uint8), photometric="separated")
    with pytest.raises(ValueError, match=r"cmyk.tif: a TIFF in the SEPARATED colour model; save it as grey or RGB"):
        read_image(tmp_path / "cmyk.tif")


@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_exif_orientation_is_applied_as_pillow_does(tmp_path, orientation):
    pixels = np.random.default_rng(orientation).integers(0, 255, (6, 10, 3), dtype=np.uint8)
    stored = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.save(tmp_path / "photo.png", exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "photo.png")))
    image, info = read_image(tmp_path / "photo.png")
    assert np.array_equal((image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), expected)
    assert ("EXIF orientation" in info.get("colour", "")) == (orientation != 1)
    assert np.array_equal(_orient(pixels, orientation) if orientation != 1 else pixels, expected)


def test_the_tiff_orientation_tag_is_applied(tmp_path):
    pixels = np.arange(6 * 10, dtype=np.uint16).reshape(6, 10)
    tifffile.imwrite(tmp_path / "turned.tif", pixels, extratags=[(274, "H", 1, 6, True)])
    image, info = read_image(tmp_path / "turned.tif", "type_max")
    assert image.shape == (1, 10, 6) and np.allclose(image[0].numpy() * 65535, np.rot90(pixels, -1))
    assert "TIFF orientation 6 applied (rotated 90 degrees clockwise)" in info["colour"]


def test_a_huge_image_is_refused_from_its_header_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "sparse.tif"
    tifffile.imwrite(path, np.zeros((16, 16), np.uint8))
    with tifffile.TiffFile(path, mode="r+b") as tiff:
        tiff.pages.first.tags["ImageWidth"].overwrite(100000)
        tiff.pages.first.tags["ImageLength"].overwrite(100000)
    monkeypatch.setattr(tifffile.TiffPageSeries, "asarray", lambda *a, **k: pytest.fail("pixels were decoded"))
    with pytest.raises(ValueError, match=rf"sparse.tif: its header declares 100000 x 100000 pixels, more than the "
                                         rf"{MAX_IMAGE_PIXELS:,} an image may have here; crop or downsample"):
        read_image(path)
    Image.new("L", (10000, 10000)).save(tmp_path / "big.png")  # 1e8 pixels, beyond the limit, a few kB on disk
    with pytest.raises(ValueError, match=r"big.png: its header declares 1 x 10000 x 10000 pixels"):
        read_image(tmp_path / "big.png")


def test_a_truncated_image_is_one_line_naming_the_file_and_the_fix(tmp_path):
    Image.fromarray(orange(64, 64)).save(tmp_path / "cut.png")
    data = (tmp_path / "cut.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError) as raised:
        read_image(tmp_path / "cut.png")
    message = str(raised.value)
    assert "\n" not in message and "cut.png: not a readable image file" in message and "re-copy" in message

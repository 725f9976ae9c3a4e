"""Image reading (sscn.images, the one decoder) and the CLI's writing (colorize_cli.images), checked against numpy /
Pillow references."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sscn.cli.images import output_format, write_image
from sscn.images import ImageError, float_to_bytes, read_image, to_uint8


@pytest.fixture
def photo(data_dir) -> np.ndarray:
    """campus1.jpg as an (H, W, 3) uint8 array."""
    return np.asarray(Image.open(data_dir / "campus1.jpg").convert("RGB"))


class TestRead:
    def test_colour_jpeg(self, data_dir, photo):
        picture = read_image(data_dir / "campus1.jpg")
        assert picture.pixels.dtype == torch.uint8
        assert picture.pixels.shape == (3, *photo.shape[:2])
        assert np.array_equal(picture.pixels.permute(1, 2, 0).numpy(), photo)
        assert picture.alpha is None

    def test_grayscale_is_one_channel(self, tmp_path, photo):
        path = tmp_path / "gray.png"
        Image.fromarray(photo).convert("L").save(path)
        picture = read_image(path)
        assert picture.pixels.shape == (1, *photo.shape[:2])
        assert np.array_equal(picture.pixels[0].numpy(), np.asarray(Image.open(path)))

    def test_rgba_keeps_alpha(self, tmp_path, photo):
        alpha = np.tile(np.linspace(0, 255, photo.shape[1]).astype(np.uint8), (photo.shape[0], 1))
        path = tmp_path / "rgba.png"
        Image.fromarray(np.dstack([photo, alpha]), "RGBA").save(path)
        picture = read_image(path)
        assert picture.pixels.shape == (3, *photo.shape[:2])
        assert np.array_equal(picture.pixels.permute(1, 2, 0).numpy(), photo)
        assert np.array_equal(picture.alpha.numpy(), alpha)

    def test_sixteen_bit_is_float(self, tmp_path):
        values = np.linspace(0, 65535, 40 * 30).astype(np.uint16).reshape(30, 40)
        path = tmp_path / "deep.png"
        Image.fromarray(values).save(path)
        assert Image.open(path).mode.startswith("I")
        picture = read_image(path)
        assert picture.pixels.dtype == torch.float32 and picture.pixels.shape == (1, 30, 40)
        np.testing.assert_allclose(picture.pixels[0].numpy(), values / 65535.0, atol=1e-6)

    def test_palette_mode(self, tmp_path, photo):
        path = tmp_path / "indexed.png"
        indexed = Image.fromarray(photo).quantize(64)
        indexed.save(path)
        picture = read_image(path)
        assert picture.pixels.shape == (3, *photo.shape[:2])
        assert np.array_equal(picture.pixels.permute(1, 2, 0).numpy(), np.asarray(indexed.convert("RGB")))

    def test_exif_orientation_applied(self, tmp_path, photo):
        path = tmp_path / "rotated.jpg"
        exif = Image.Exif()
        exif[0x0112] = 6      # "rotate 90 CW to display"
        Image.fromarray(photo).save(path, exif=exif, quality=100)
        stored = np.asarray(Image.open(path).convert("RGB"))
        picture = read_image(path)
        assert picture.pixels.shape == (3, photo.shape[1], photo.shape[0])
        assert np.array_equal(picture.pixels.permute(1, 2, 0).numpy(), np.rot90(stored, k=-1))

    def test_cmyk_is_converted(self, tmp_path, photo):
        path = tmp_path / "cmyk.jpg"
        Image.fromarray(photo).convert("CMYK").save(path)
        assert read_image(path).pixels.shape == (3, *photo.shape[:2])


class TestReadErrors:
    def error(self, path) -> str:
        with pytest.raises(ImageError) as caught:
            read_image(path)
        assert str(path) in str(caught.value)
        return str(caught.value)

    def test_missing(self, tmp_path):
        assert "no such file" in self.error(tmp_path / "absent.jpg")

    def test_zero_bytes(self, tmp_path):
        (tmp_path / "empty.jpg").write_bytes(b"")
        assert "empty file" in self.error(tmp_path / "empty.jpg")

    def test_text_named_jpg(self, tmp_path):
        (tmp_path / "notes.jpg").write_text("not a picture\n")
        assert "not an image" in self.error(tmp_path / "notes.jpg")

    def test_truncated(self, tmp_path, data_dir):
        data = (data_dir / "campus1.jpg").read_bytes()
        (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
        assert "truncated" in self.error(tmp_path / "cut.jpg")

    def test_long_strip_is_fine(self, tmp_path):
        Image.new("L", (30001, 2)).save(tmp_path / "wide.png")      # the bound is on pixels, not on a side
        assert read_image(tmp_path / "wide.png").pixels.shape == (1, 2, 30001)

    def test_too_many_pixels(self, tmp_path):
        Image.new("1", (14200, 14200)).save(tmp_path / "bomb.png")     # 201 Mpx, a few kB on disk
        message = self.error(tmp_path / "bomb.png")
        assert "too large (14200x14200 = 202 Mpx; --max-pixels is 100 Mpx" in message

    def test_max_pixels(self, tmp_path):
        Image.new("L", (100, 100)).save(tmp_path / "small.png")
        with pytest.raises(ImageError, match="--max-pixels is 0.005 Mpx"):
            read_image(tmp_path / "small.png", max_pixels=5000)

    def test_symlink_loop(self, tmp_path):
        (tmp_path / "loop.jpg").symlink_to(tmp_path / "loop.jpg")
        assert "cannot read (Too many levels of symbolic links)" in self.error(tmp_path / "loop.jpg")

    def test_gray_icc_profile_is_dropped(self, tmp_path):
        from PIL import ImageCms

        gray_profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
        gray_profile = gray_profile[:16] + b"GRAY" + gray_profile[20:]
        Image.new("L", (8, 8)).save(tmp_path / "gray.png", icc_profile=gray_profile)
        srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
        Image.new("RGB", (8, 8)).save(tmp_path / "rgb.png", icc_profile=srgb)
        assert read_image(tmp_path / "gray.png").icc_profile is None
        assert read_image(tmp_path / "rgb.png").icc_profile == srgb

    def test_float_mode_unsupported(self, tmp_path):
        Image.new("F", (8, 8)).save(tmp_path / "float.tif")
        assert "unsupported image mode F" in self.error(tmp_path / "float.tif")

    def test_folder(self, tmp_path):
        (tmp_path / "dir.jpg").mkdir()
        assert "folder" in self.error(tmp_path / "dir.jpg")


class TestWrite:
    def test_png_round_trip(self, tmp_path):
        rgb = torch.rand(3, 17, 23)
        write_image(tmp_path / "out.png", rgb)
        written = np.asarray(Image.open(tmp_path / "out.png"))
        assert np.array_equal(written, np.round(rgb.permute(1, 2, 0).numpy() * 255).astype(np.uint8))
        assert [p.name for p in tmp_path.iterdir()] == ["out.png"]      # no temporary file left behind

    def test_alpha_kept_in_png_dropped_in_jpeg(self, tmp_path):
        rgb, alpha = torch.rand(3, 8, 9), torch.randint(0, 256, (8, 9), dtype=torch.uint8)
        write_image(tmp_path / "a.png", rgb, alpha)
        write_image(tmp_path / "a.jpg", rgb, alpha)
        assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png"))[..., 3], alpha.numpy())
        assert Image.open(tmp_path / "a.jpg").mode == "RGB"

    def test_unknown_suffix(self, tmp_path):
        with pytest.raises(ValueError, match="cannot write images with suffix"):
            output_format(tmp_path / "out.xyz")

    def test_uint8_written_as_is(self, tmp_path):
        pixels = torch.randint(0, 256, (17, 23, 3), dtype=torch.uint8)
        rgb = pixels.permute(2, 0, 1)                                   # (3, H, W), channels-last storage
        assert np.shares_memory(to_uint8(rgb), pixels.numpy())         # no copy on the way to the encoder
        write_image(tmp_path / "out.png", rgb)
        assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), pixels.numpy())

    def test_to_uint8_clamps(self):
        rgb = torch.tensor([-0.5, 0.0, 0.5, 1.0, 1.5]).view(1, 1, 5).expand(3, 1, 5)
        assert to_uint8(rgb)[0, :, 0].tolist() == [0, 0, 128, 255, 255]

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
    def test_float_to_bytes_is_the_nearest_level(self, dtype):
        values = torch.rand(4, 7, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 1.4 - 0.2
        expected = np.rint(np.clip(values.to(dtype).double().numpy(), 0.0, 1.0) * 255.0).astype(np.uint8)
        result = float_to_bytes(values.to(dtype))
        assert result.dtype == torch.uint8 and result.shape == values.shape
        # float32 rounding of x * 255 may land on the other side of a half only within 1e-4 of it
        assert np.abs(result.numpy().astype(int) - expected).max() <= 1
        assert (result.numpy() == expected).mean() > 0.999


def test_colorize_evaluate_and_train_see_the_same_photos(tmp_path, data_dir):
    """One set of photo suffixes (sscn.images.IMAGE_SUFFIXES) for `sscn colorize DIR`, `sscn evaluate DIR` and
    `sscn train DIR`."""
    import shutil

    from sscn.cli.evaluate_inputs import photo_paths
    from sscn.cli.targets import discover, is_video
    from sscn.train.data import find_photos

    photos = {"a.jpg", "b.JPE", "c.jfif", "d.ppm", "e.tiff", "f.webp", "g.pgm"}
    for name in (*photos, "notes.txt", "anim.gif", "clip.mp4"):
        shutil.copy(data_dir / "campus1.jpg", tmp_path / name)
    assert {path.name for path in find_photos(tmp_path)} == photos
    assert {path.name for path in photo_paths(tmp_path, None)} == photos
    targets = discover([str(tmp_path)], recursive=False, exclude=[], stdin=[])
    assert {target.path.name for target in targets if not is_video(target.path)} == photos

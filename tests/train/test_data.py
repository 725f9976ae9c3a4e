"""Training photos (train.data): discovery, labels from class folders, decoding, held vs streamed batches."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sscn.train import data
from sscn.train.data import (EpochSampler, PhotoFolder, PhotoSource, class_labels, class_partners, find_photos,
                             load_square)


@pytest.fixture()
def class_folder(tmp_path, photo_paths) -> Path:
    """Two classes: cats/ (two photos, one nested deeper) and dogs/ (two photos), plus a non-image file."""
    (tmp_path / "cats" / "more").mkdir(parents=True)
    (tmp_path / "dogs").mkdir()
    shutil.copy(photo_paths[0], tmp_path / "cats" / "a.jpg")
    shutil.copy(photo_paths[1], tmp_path / "cats" / "more" / "b.JPG")
    shutil.copy(photo_paths[2], tmp_path / "dogs" / "c.jpg")
    shutil.copy(photo_paths[3], tmp_path / "dogs" / "d.jpg")
    (tmp_path / "dogs" / "notes.txt").write_text("not a photo")
    return tmp_path


class TestDiscovery:
    def test_recursive_and_sorted(self, class_folder):
        found = find_photos(class_folder)
        assert [p.relative_to(class_folder).as_posix() for p in found] == [
            "cats/a.jpg", "cats/more/b.JPG", "dogs/c.jpg", "dogs/d.jpg"]

    def test_missing_folder(self, tmp_path):
        with pytest.raises(ValueError, match="not a folder of photos"):
            find_photos(tmp_path / "nope")

    def test_empty_folder(self, tmp_path):
        (tmp_path / "readme.txt").write_text("x")
        with pytest.raises(ValueError, match="no photos found"):
            find_photos(tmp_path)

    def test_labels_from_first_folder_level(self, class_folder):
        names, labels = class_labels(class_folder, find_photos(class_folder))
        assert names == ["cats", "dogs"] and labels == [0, 0, 1, 1]

    def test_no_labels_for_a_flat_folder_or_a_single_class(self, data_dir, class_folder):
        assert class_labels(data_dir, find_photos(data_dir)) is None
        assert class_labels(class_folder / "dogs", find_photos(class_folder / "dogs")) is None
        shutil.copy(data_dir / "tomato.jpg", class_folder / "loose.jpg")
        assert class_labels(class_folder, find_photos(class_folder)) is None


class TestDecoding:
    def test_square_uint8_centre_crop(self, photo_paths):
        square = load_square(photo_paths[0], 48)
        assert square.shape == (3, 48, 48) and square.dtype == torch.uint8

    def test_exif_orientation_is_honoured(self, tmp_path):
        # a wide image stored with EXIF orientation 6 (rotate 90 degrees) is tall when shown
        image = Image.new("RGB", (40, 20), (255, 0, 0))
        image.paste((0, 0, 255), (0, 0, 20, 20))           # left half blue
        exif = Image.Exif()
        exif[0x0112] = 6
        path = tmp_path / "rotated.jpg"
        image.save(path, exif=exif, quality=95)
        square = load_square(path, 20).float()
        # shown upright (turned clockwise) it is tall with the blue half on top; the square is its middle
        top, bottom = square[:, :2].mean(dim=(1, 2)), square[:, -2:].mean(dim=(1, 2))
        assert top[2] > top[0] and bottom[0] > bottom[2]

    def test_sixteen_bit_through_the_one_decoder(self, tmp_path):
        """Decoded by sscn.images.read_image, as `sscn colorize` reads it: 16-bit gray keeps its levels."""
        values = np.linspace(0, 65535, 64 * 32).astype(np.uint16).reshape(32, 64)
        Image.fromarray(values).save(tmp_path / "deep.png")
        square = load_square(tmp_path / "deep.png", 32)
        assert torch.equal(square[0], square[1]) and torch.equal(square[1], square[2])
        expected = torch.from_numpy(np.round(values[:, 16:48] / 257.0).astype(np.uint8))     # the centre crop
        assert (square[0].int() - expected.int()).abs().max() <= 2                           # bicubic at scale 1

    def test_unreadable_photo_is_named(self, tmp_path):
        path = tmp_path / "broken.jpg"
        path.write_bytes(b"not a jpeg")
        with pytest.raises(ValueError, match="broken.jpg"):
            load_square(path, 32)

    def test_decoded_in_order_with_labels(self, class_folder):
        folder = PhotoFolder(class_folder, 32)
        photos, labels = folder.decoded()
        assert photos.shape == (4, 3, 32, 32) and labels.tolist() == [0, 0, 1, 1]
        assert torch.equal(photos[2], load_square(class_folder / "dogs" / "c.jpg", 32))


class TestEpochSampler:
    def take(self, sampler: EpochSampler, count: int) -> list[int]:
        stream = iter(sampler)
        return [next(stream) for _ in range(count)]

    def test_each_epoch_is_a_permutation(self):
        drawn = self.take(EpochSampler(7, seed=0), 21)
        for epoch in range(3):
            assert sorted(drawn[epoch * 7:(epoch + 1) * 7]) == list(range(7))
        assert drawn[:7] != drawn[7:14]

    def test_ranks_share_out_each_epoch(self):
        first, second = (self.take(EpochSampler(8, seed=1, rank=rank, world=2), 4) for rank in (0, 1))
        assert sorted(first + second) == list(range(8))

    def test_skip_continues_the_same_stream(self):
        whole = self.take(EpochSampler(5, seed=2), 17)
        assert self.take(EpochSampler(5, seed=2, skip=6), 11) == whole[6:]


class TestPhotoSource:
    def test_held_batches(self, class_folder):
        source = PhotoSource(PhotoFolder(class_folder, 32), 3, torch.device("cpu"), workers=0, seed=0)
        assert source.loader is None
        photos, labels, partners = source.next()
        assert photos.shape == (3, 3, 32, 32) and photos.dtype == torch.uint8
        assert labels.shape == (3,) and set(labels.tolist()) <= {0, 1}
        assert partners is None

    def test_partners_are_other_photos_of_the_same_class(self, class_folder):
        folder = PhotoFolder(class_folder, 32)
        source = PhotoSource(folder, 16, torch.device("cpu"), workers=0, seed=0, partners=True)
        photos, labels, partners = source.next()
        assert partners.shape == photos.shape and partners.dtype == torch.uint8
        held = {tuple(photo.flatten()[:64].tolist()): label for photo, label in zip(*folder.decoded())}
        for photo, label, partner in zip(photos, labels, partners):
            assert not torch.equal(photo, partner)                  # every class here has two photos
            assert held[tuple(partner.flatten()[:64].tolist())] == label

    def test_class_partners_of_a_one_photo_class_is_itself(self):
        labels = torch.tensor([0, 1, 1, 2, 1])
        pick = torch.tensor([0, 1, 2, 3, 4] * 20)
        partners = class_partners(labels, pick, torch.Generator().manual_seed(0))
        assert torch.equal(labels[partners], labels[pick])
        assert torch.equal(partners[pick == 0], pick[pick == 0]) and torch.equal(partners[pick == 3], pick[pick == 3])
        many = (pick == 1) | (pick == 2) | (pick == 4)
        assert (partners[many] != pick[many]).all()
        assert set(partners[pick == 1].tolist()) == {2, 4}         # both others drawn

    def test_partners_need_classes_held_in_memory(self, data_dir, class_folder, monkeypatch):
        with pytest.raises(ValueError, match="class pairs need class subfolders"):
            PhotoSource(PhotoFolder(data_dir, 32), 2, torch.device("cpu"), workers=0, seed=0, partners=True)
        monkeypatch.setattr(data, "IN_MEMORY_BYTES", 0)
        with pytest.raises(ValueError, match="small enough to hold in memory"):
            PhotoSource(PhotoFolder(class_folder, 32), 2, torch.device("cpu"), workers=0, seed=0, partners=True)

    def test_flat_folder_has_no_labels(self, data_dir):
        _, labels, _ = PhotoSource(PhotoFolder(data_dir, 32), 2, torch.device("cpu"), workers=0, seed=0).next()
        assert labels is None

    def test_held_state_round_trip(self, data_dir):
        source = PhotoSource(PhotoFolder(data_dir, 32), 2, torch.device("cpu"), workers=0, seed=0)
        source.next()
        state = source.get_state()
        expected = source.next()[0]
        fresh = PhotoSource(PhotoFolder(data_dir, 32), 2, torch.device("cpu"), workers=0, seed=0)
        fresh.set_state(state)
        assert torch.equal(fresh.next()[0], expected)

    def test_streamed_batches_resume_at_the_step(self, class_folder, monkeypatch):
        monkeypatch.setattr(data, "IN_MEMORY_BYTES", 0)
        folder = PhotoFolder(class_folder, 32)
        source = PhotoSource(folder, 2, torch.device("cpu"), workers=0, seed=3)
        assert source.loader is not None
        batches = [source.next() for _ in range(3)]
        assert batches[0][1].shape == (2,)
        resumed = PhotoSource(folder, 2, torch.device("cpu"), workers=0, seed=3, start_step=2)
        photos, labels, _ = resumed.next()
        assert torch.equal(photos, batches[2][0]) and torch.equal(labels, batches[2][1])

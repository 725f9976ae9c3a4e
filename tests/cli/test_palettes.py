"""Palette parsing for `sscn palette` (colorize_cli.palettes)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from sscn.cli.palettes import parse_colors, parse_weights, read_palette

RED, WHITE, TEAL = (230, 57, 70), (241, 250, 238), (168, 218, 220)


class TestOptions:
    def test_colors(self):
        assert parse_colors("#e63946,#f1faee, a8dadc") == [RED, WHITE, TEAL]

    def test_short_hex(self):
        assert parse_colors("#fff #000") == [(255, 255, 255), (0, 0, 0)]

    @pytest.mark.parametrize("text", ["#e6394", "#zzzzzz", "red", "#e63946,#12"])
    def test_malformed_colour(self, text):
        with pytest.raises(ValueError, match="malformed colour"):
            parse_colors(text)

    def test_empty(self):
        with pytest.raises(ValueError, match="no colours"):
            parse_colors(" , ")

    def test_weights(self):
        assert parse_weights("0.5,0.3, 0.2") == [0.5, 0.3, 0.2]

    @pytest.mark.parametrize("text, message", [("0.5,x", "malformed weight"), ("-1,2", ">= 0"), ("nan", ">= 0")])
    def test_bad_weights(self, text, message):
        with pytest.raises(ValueError, match=message):
            parse_weights(text)


class TestFiles:
    def test_gpl(self, tmp_path):
        path = tmp_path / "p.gpl"
        path.write_text("GIMP Palette\nName: test\nColumns: 3\n#\n230  57  70\tred\n241 250 238 white\n"
                        "168 218 220\n")
        palette = read_palette(path)
        assert palette.colors == [RED, WHITE, TEAL] and palette.weights is None

    def test_gpl_bad_row(self, tmp_path):
        path = tmp_path / "p.gpl"
        path.write_text("GIMP Palette\n230 57\n")
        with pytest.raises(ValueError, match=r"p\.gpl: line 2: malformed GIMP palette row"):
            read_palette(path)

    def test_hex_text_with_comments(self, tmp_path):
        path = tmp_path / "p.txt"
        path.write_text("# my palette\n#e63946\n\nf1faee #a8dadc\n")
        assert read_palette(path).colors == [RED, WHITE, TEAL]

    def test_json_list(self, tmp_path):
        path = tmp_path / "p.json"
        path.write_text(json.dumps(["#e63946", [241, 250, 238]]))
        assert read_palette(path).colors == [RED, WHITE]

    def test_json_object_with_weights(self, tmp_path):
        path = tmp_path / "p.json"
        path.write_text(json.dumps({"colors": ["#e63946", "#f1faee"], "weights": [3, 1]}))
        palette = read_palette(path)
        assert palette.colors == [RED, WHITE] and palette.weights == [3.0, 1.0]

    @pytest.mark.parametrize("text, message", [('{"colours": []}', '"colors"'), ("[1, 2", "malformed JSON"),
                                               ('["#e63946", [1, 2]]', "malformed colour")])
    def test_json_errors(self, tmp_path, text, message):
        path = tmp_path / "p.json"
        path.write_text(text)
        with pytest.raises(ValueError, match=message):
            read_palette(path)

    def test_image_dominant_colours(self, tmp_path):
        halves = np.zeros((40, 40, 3), np.uint8)
        halves[:, :30] = RED           # 75 %
        halves[:, 30:] = TEAL          # 25 %
        Image.fromarray(halves).save(tmp_path / "p.png")
        palette = read_palette(tmp_path / "p.png", count=2)
        assert palette.colors == [RED, TEAL]
        np.testing.assert_allclose(palette.weights, [0.75, 0.25], atol=0.02)

    def test_missing(self, tmp_path):
        with pytest.raises(ValueError, match="palette file not found"):
            read_palette(tmp_path / "absent.gpl")

    def test_binary_garbage(self, tmp_path):
        (tmp_path / "p.bin").write_bytes(bytes(range(256)))
        with pytest.raises(ValueError, match="not a palette file"):
            read_palette(tmp_path / "p.bin")

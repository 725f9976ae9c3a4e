"""`--ray`: the Ray Data backend of `sscn colorize` / `sscn palette` gives the bytes, skips, counts and exit
codes of a local run. One local Ray with 2 CPUs serves the module; runs are in-process (one through the
installed command, joining that Ray by its address)."""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from sscn.cli.app import app
from sscn.cli.errors import CLIError
from sscn.cli.ray_backend import INSTALL_HINT, RaySettings, _actor_resources, plan_units
from sscn.cli.runner import Group
from sscn.cli.targets import Job


@pytest.fixture(scope="module")
def ray_address():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(autouse=True)
def one_thread():
    """Local runs (in this process) with the one torch thread of a 1-CPU actor: CPU convolutions round
    differently with the thread count."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def fast(tiny_weights) -> list[str]:
    return ["--weights", str(tiny_weights), "--size", "64", "--batch-size", "4"]


def invoke(*args):
    return CliRunner().invoke(app, [str(arg) for arg in args])


@pytest.fixture(scope="module")
def folder(tmp_path_factory, photo_paths) -> Path:
    """20 small photos of assorted sizes (JPEG and PNG) and, among them, one file that is not an image."""
    folder = tmp_path_factory.mktemp("ray") / "scans"
    folder.mkdir()
    for index in range(20):
        with Image.open(photo_paths[index % len(photo_paths)]) as photo:
            crop = photo.convert("L").crop((index * 7, index * 5, index * 7 + 40 + index, index * 5 + 32))
        crop.save(folder / f"scan{index:02d}.{'png' if index % 2 else 'jpg'}")
    (folder / "scan07b.jpg").write_bytes(b"not an image")      # mid-folder: a bad file must not shift batches
    return folder


def same_bytes(left: Path, right: Path) -> list[str]:
    """Relative names of files that differ (or exist on one side only) between two output folders."""
    names = {p.relative_to(left) for p in left.rglob("*") if p.is_file()}
    names |= {p.relative_to(right) for p in right.rglob("*") if p.is_file()}
    return sorted(str(n) for n in names if not ((left / n).is_file() and (right / n).is_file()
                                               and (left / n).read_bytes() == (right / n).read_bytes()))


def test_folder_matches_a_local_run_and_a_rerun_skips(ray_address, run_sscn, folder, data_dir, fast, tmp_path):
    ref = data_dir / "campus2.jpg"
    local = invoke("colorize", folder, "--ref", ref, "-o", tmp_path / "local", *fast, "--json")
    assert local.exit_code == 1, local.output
    # the installed command, a second driver joining the cluster by its address, two 1-CPU actors
    on_ray = run_sscn("colorize", folder, "--ref", ref, "-o", tmp_path / "ray", *fast, "--json",
                      "--ray", ray_address, "--ray-actors", 2, "--ray-cpus", 1)
    assert on_ray.returncode == 1, on_ray.stderr
    assert on_ray.stderr.splitlines()[0] == f"sscn: error: {folder / 'scan07b.jpg'}: not an image (or a format " \
                                            "that cannot be read)"
    summary = json.loads(on_ray.stdout)
    assert (summary["done"], summary["skipped"], summary["failed"], summary["images"]) == (20, 0, 1, 20)
    local_items = [{**item, "output": item["output"].replace(str(tmp_path / "local"), str(tmp_path / "ray"))}
                   for item in json.loads(local.stdout)["items"]]
    def by_input(items):        # a local run's order depends on when its writes finish
        return sorted(items, key=lambda item: item["input"])

    assert by_input(summary["items"]) == by_input(local_items)
    assert same_bytes(tmp_path / "local", tmp_path / "ray") == []
    assert not [p for p in (tmp_path / "ray").iterdir() if p.name.startswith(".")]     # no temporary left

    rerun = invoke("colorize", folder, "--ref", ref, "-o", tmp_path / "ray", *fast, "--json", "--ray", "auto")
    assert rerun.exit_code == 1
    counts = json.loads(rerun.stdout)
    assert (counts["done"], counts["skipped"], counts["failed"]) == (0, 20, 1)


def test_pairs_with_two_references(ray_address, folder, data_dir, fast, tmp_path):
    rows = [f"{folder / f'scan{index:02d}.png'},{data_dir / ref}"
            for index, ref in zip(range(1, 13, 2), ["campus2.jpg", "flowers.jpg"] * 3)]
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("target,reference\n" + "\n".join(rows) + "\n")
    local = invoke("colorize", "--pairs", pairs, "-o", tmp_path / "local", *fast)
    on_ray = invoke("colorize", "--pairs", pairs, "-o", tmp_path / "ray", *fast, "--json", "--ray", "auto")
    assert local.exit_code == on_ray.exit_code == 0, on_ray.output
    assert json.loads(on_ray.stdout)["done"] == 6
    assert same_bytes(tmp_path / "local", tmp_path / "ray") == []


def test_palette_videos_spread_over_actors(ray_address, data_dir, fast, tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("a.mp4", "b.mp4"):
        (clips / name).write_bytes((data_dir / "tree-2s.mp4").read_bytes())
    options = ("--colors", "#264653,#2a9d8f,#e9c46a", *fast)
    local = invoke("palette", clips, *options, "-o", tmp_path / "local")
    on_ray = invoke("palette", clips, *options, "-o", tmp_path / "ray", "--json", "--ray", "auto",
                    "--ray-actors", 2)
    assert local.exit_code == on_ray.exit_code == 0, on_ray.output
    summary = json.loads(on_ray.stdout)
    assert [item["frames"] for item in summary["items"]] == [30, 30] and summary["images"] == 60
    assert same_bytes(tmp_path / "local", tmp_path / "ray") == []


def test_without_ray_one_line_says_how_to_get_it(monkeypatch, folder, data_dir, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)       # `import ray` raises ImportError
    result = invoke("colorize", folder, "--ref", data_dir / "campus2.jpg", "-o", tmp_path, "--ray", "auto")
    assert result.exit_code == 2
    assert result.stderr == f"sscn: error: {INSTALL_HINT}\n"


def test_ray_options_need_ray(folder, data_dir, tmp_path):
    result = invoke("colorize", folder, "--ref", data_dir / "campus2.jpg", "-o", tmp_path, "--ray-actors", "2")
    assert result.exit_code == 2 and "apply with --ray ADDRESS only" in result.stderr


def test_units_are_the_batches_of_a_local_run():
    def job(name: str) -> Job:
        return Job(Path(name), Path(f"out/{name}"), video=name.endswith(".mp4"))

    first = Group(print, [job("a.jpg"), job("clip.mp4"), job("b.jpg"), job("c.jpg")])
    second = Group(print, [job("d.jpg")])
    units = plan_units([first, second], batch_size=2)
    assert [(unit.group, [str(j.source) for j in unit.jobs]) for unit in units] == [
        (0, ["a.jpg", "b.jpg"]), (0, ["c.jpg"]), (0, ["clip.mp4"]), (1, ["d.jpg"])]


@pytest.mark.parametrize("cluster, options, device, expected", [
    ({"CPU": 16.0}, {}, "auto", (16, 1.0, 0.0)),                  # CPU-only: an engine per core
    ({"CPU": 16.0}, {"cpus": 4}, "auto", (4, 4.0, 0.0)),
    ({"CPU": 32.0, "GPU": 4.0}, {}, "auto", (4, 8.0, 1.0)),       # an engine per GPU, a GPU's share of CPUs
    ({"CPU": 32.0, "GPU": 4.0}, {"gpus": 0.5}, "auto", (8, 4.0, 0.5)),
    ({"CPU": 32.0, "GPU": 4.0}, {}, "cpu", (32, 1.0, 0.0)),       # --device cpu leaves the GPUs alone
])
def test_actor_resources(cluster, options, device, expected):
    resources = _actor_resources(cluster, RaySettings("auto", **options), device, units=100)
    assert (resources.actors, resources.cpus, resources.gpus) == expected


def test_actor_resources_beyond_the_cluster_is_one_line():
    with pytest.raises(CLIError, match="4 Ray actors need 8 CPUs; the cluster has 2"):
        _actor_resources({"CPU": 2.0}, RaySettings("auto", actors=4, cpus=2), "auto", units=100)


def test_what_stops_an_actor_comes_back_to_the_driver(ray_address, tmp_path):
    """A failure outside any one file (here: weights gone from the node) returns as the exception itself,
    which the driver raises for the usual one-line report."""
    import pickle

    import numpy as np
    import ray

    from sscn.cli.ray_backend import _EngineActor
    from sscn.cli.settings import RunSettings

    settings = RunSettings(weights=tmp_path / "gone.safetensors", size=64)
    actor = _EngineActor(settings, [ray.put([print])], threads=1, cwd=None)
    row = actor({"unit": np.array([3]), "group": np.array([0]), "jobs": np.array(["[]"])})
    assert row["unit"][0] == 3 and json.loads(row["items"][0]) == []
    error = pickle.loads(row["error"][0])
    assert isinstance(error, ValueError) and str(error) == f"{tmp_path / 'gone.safetensors'}: weights file not found"

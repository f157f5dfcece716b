"""What a kill -9 can leave half-written, and how the next run repairs it (deterministic cases)."""
import json

import h5py
import numpy as np

from dlcourse import run_dir


def write_backup(folder, epoch, suffix=""):
    folder.mkdir(exist_ok=True)
    with h5py.File(folder / f"latest.weights.h5{suffix}", "w") as store:
        store["kernel"] = np.full((3, 2), epoch, dtype="float32")
    (folder / f"training_metadata.json{suffix}").write_text(json.dumps({"epoch": epoch, "batch": 0}))


def phase_paths(tmp_path):
    return {"history": tmp_path / "history.csv", "backup": tmp_path / "backup",
            "best": tmp_path / "checkpoints" / "best.keras"}


def test_cut_off_backup_falls_back_to_the_previous_one(tmp_path):
    paths = phase_paths(tmp_path)
    write_backup(paths["backup"], 4, suffix=".bkp")
    write_backup(paths["backup"], 5)
    weights = paths["backup"] / "latest.weights.h5"
    weights.write_bytes(weights.read_bytes()[:200])  # killed while writing epoch 5
    run_dir.repair_after_kill(paths)
    assert json.loads((paths["backup"] / "training_metadata.json").read_text())["epoch"] == 4
    with h5py.File(weights, "r") as store:
        assert store["kernel"][0, 0] == 4


def test_cut_off_first_backup_is_dropped(tmp_path):
    paths = phase_paths(tmp_path)
    write_backup(paths["backup"], 1)
    (paths["backup"] / "training_metadata.json").write_text('{"epo')
    run_dir.repair_after_kill(paths)
    assert not paths["backup"].exists()


def test_intact_backup_is_left_alone(tmp_path):
    paths = phase_paths(tmp_path)
    write_backup(paths["backup"], 3)
    before = (paths["backup"] / "latest.weights.h5").read_bytes()
    run_dir.repair_after_kill(paths)
    assert (paths["backup"] / "latest.weights.h5").read_bytes() == before


def test_cut_off_history_row_and_damaged_checkpoint(tmp_path):
    paths = phase_paths(tmp_path)
    paths["history"].write_text("epoch,loss\n0,0.5\n1,0.4\n2,0.3")  # no newline: cut mid-row
    paths["best"].parent.mkdir()
    paths["best"].write_bytes(b"PK\x03\x04 half a zip file")
    run_dir.repair_after_kill(paths)
    assert paths["history"].read_text() == "epoch,loss\n0,0.5\n1,0.4\n"
    assert not paths["best"].exists()

"""atomic_write: a file is replaced whole or not at all, and no temporary file is left behind."""
import numpy as np
import pytest

from dlcourse.files import atomic_write


def test_a_finished_write_replaces_the_file(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("old\n", encoding="utf-8")
    with atomic_write(path, encoding="utf-8") as stream:
        stream.write("새 내용\n")
        assert path.read_text(encoding="utf-8") == "old\n"  # not before the block ends
    assert path.read_text(encoding="utf-8") == "새 내용\n"
    assert [entry.name for entry in tmp_path.iterdir()] == ["metrics.json"]


def test_a_writer_that_raises_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n0,1.0\n")
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_write(path, newline="") as stream:
            stream.write("epoch,loss\n")
            raise RuntimeError("disk on fire")
    assert path.read_text() == "epoch,loss\n0,1.0\n"
    assert [entry.name for entry in tmp_path.iterdir()] == ["history.csv"]


def test_a_failed_first_write_creates_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(tmp_path / "cache.npz", "wb"):
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_binary_writes_as_numpy_uses_them(tmp_path):
    path = tmp_path / "proposals.npz"
    with atomic_write(path, "wb") as stream:
        np.savez(stream, boxes=np.arange(8).reshape(2, 4))
    with np.load(path) as stored:
        assert stored["boxes"].tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_only_write_modes():
    with pytest.raises(ValueError, match="mode"):
        with atomic_write("x.txt", "a"):
            pass

import numpy as np
import pytest

from mmsent.io import UMASK, CacheCorruptError, atomic_path, load_arrays, save_arrays, write_text


def test_crash_while_writing_keeps_the_old_file(tmp_path):
    target = write_text(tmp_path / "model.txt", "good")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "good"
    assert list(tmp_path.iterdir()) == [target]  # no temp file left behind


def test_arrays_round_trip_and_corruption_is_detected(tmp_path):
    path = save_arrays(tmp_path / "f.npz", meta={"encoder": "x"}, ids=np.array(["a", "b"]),
                       X=np.eye(2, dtype=np.float32))
    arrays, meta = load_arrays(path)
    assert meta["encoder"] == "x" and arrays["X"].tolist() == [[1, 0], [0, 1]]
    data = bytearray(path.read_bytes())
    at = bytes(data).index(np.float32(1).tobytes())  # flip a bit inside X's values
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CacheCorruptError, match="dvc repro"):
        load_arrays(path)
    path.write_bytes(b"not a zip")
    with pytest.raises(CacheCorruptError):
        load_arrays(path)


def test_replace_dir_swaps_a_folder_and_keeps_the_old_one_if_the_new_one_is_missing(tmp_path):
    from mmsent.io import replace_dir

    target, built = tmp_path / "model", tmp_path / "built"
    target.mkdir()
    (target / "old.txt").write_text("old")
    built.mkdir()
    (built / "new.txt").write_text("new")
    replace_dir(built, target)
    assert [p.name for p in target.iterdir()] == ["new.txt"] and not built.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # nothing left aside
    import pytest

    with pytest.raises(FileNotFoundError):
        replace_dir(tmp_path / "never-built", target)
    assert (target / "new.txt").read_text() == "new"


def test_atomic_path_leaves_the_file_with_the_usual_permissions(tmp_path):
    plain = tmp_path / "plain.md"
    plain.write_text("x")  # the mode an ordinary write gives under this process's umask
    target = tmp_path / "report.md"
    with atomic_path(target) as tmp:
        tmp.write_text("x")
    assert target.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
    assert target.stat().st_mode & 0o777 == 0o666 & ~UMASK  # not mkstemp's 0600

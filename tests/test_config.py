import pytest
import yaml

from mmsent.config import load_params

from conftest import REPO, write_params


def test_repo_params_default_root_is_shared_mvsa():
    params = load_params(REPO / "params.yaml")
    assert params.data.root == (REPO / "../shared/data/mvsa").resolve()
    assert params.features.text_encoders == ["minilm", "vader", "use"] and params.features.ocr_encoders == ["minilm"]


def test_environment_overrides(tmp_path, monkeypatch):
    path = write_params(tmp_path, tmp_path / "x")
    monkeypatch.setenv("MMSENT_DATA_ROOT", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("MMSENT_DEVICE", "cpu")
    params = load_params(path)
    assert params.data.root == (tmp_path / "elsewhere").resolve()
    assert params.features.device == "cpu"


def test_overrides_and_profiles(tmp_path):
    path = write_params(tmp_path, tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["profiles"] = {"gpu": {"features": {"batch_size": 256}}}
    path.write_text(yaml.safe_dump(raw))
    assert load_params(path, profile="gpu").features.batch_size == 256
    assert load_params(path, overrides={"data": {"dedup": True}}).data.dedup is True
    with pytest.raises(ValueError, match="unknown profile"):
        load_params(path, profile="nope")


def test_unknown_and_invalid_keys_are_clear_errors(tmp_path):
    path = write_params(tmp_path, tmp_path, data={"splitt": "x"})
    with pytest.raises(ValueError, match="unknown key.*splitt"):
        load_params(path)
    with pytest.raises(ValueError, match="data.split"):
        load_params(write_params(tmp_path / "b", tmp_path, data={"split": "random"}))


def test_profiles_live_in_their_own_files_beside_params(tmp_path):
    """profiles/<name>.yaml beside params.yaml is merged on top when chosen; the default leaves it out."""
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "big.yaml").write_text("features: {batch_size: 512}\n")
    (tmp_path / "params.yaml").write_text("features: {batch_size: 8}\n")
    assert load_params(tmp_path / "params.yaml").features.batch_size == 8
    assert load_params(tmp_path / "params.yaml", profile="big").features.batch_size == 512
    with pytest.raises(ValueError, match="known: \\['big'\\]"):
        load_params(tmp_path / "params.yaml", profile="nope")

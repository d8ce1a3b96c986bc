"""Ensembles are scored on the fold models' out-of-fold probabilities, never on test, and ship as
one checkpoint that predicts what was scored."""

from mmsent.paths import RunPaths
from mmsent import sections
import numpy as np
import pytest
import torch

from mmsent.evaluation import ensemble
from mmsent.serving import ship
from mmsent.training.inputs import cv_inputs
from mmsent.data.mvsa import load_parts
from mmsent.training.specs import model_specs
from mmsent.training.runs import run_model
from mmsent.io import read_json
from mmsent.training.loop import load_checkpoint, predict_proba

from test_experiments import project  # noqa: F401


def _trained(project, names=("attention_fusion", "concat_fusion")):  # noqa: F811
    project.models["concat_fusion"] = {"family": "concat_fusion", "group": "fusion",
                                                "inputs": {"text": "fake_text", "image": "fake_image"},
                                                "options": {"hidden": [8]}}
    for name in names:
        run_model(project, model_specs(project)[name])
    return project


def test_out_of_fold_probabilities_reproduce_the_cv_fold_scores(project):  # noqa: F811
    _trained(project, ("attention_fusion",))
    cv = read_json(RunPaths(project).record("attention_fusion", "single"))["cv"]
    folds = ensemble.load_folds(project, "attention_fusion")
    assert folds["oof"].shape[:2] == (1, len(folds["ids"])) and not np.isnan(folds["oof"]).any()
    assert folds["test"].shape[0] == 2  # one test prediction per fold model
    scores = ensemble.fold_scores(project, ["attention_fusion"], bag=False)
    np.testing.assert_allclose(scores, cv["per_fold"]["weighted_f1"][: cv["folds"]], atol=1e-6)


def test_a_bag_averages_each_pairs_repeats_and_a_family_its_members():
    a = {"oof": np.array([[[1.0, 0, 0]], [[0, 1.0, 0]]])}  # 2 repeats, 1 pair
    b = {"oof": np.array([[[0, 0, 1.0]], [[0, 0, 1.0]]])}
    np.testing.assert_allclose(ensemble.averaged([a], bag=True), [[0.5, 0.5, 0]])
    np.testing.assert_allclose(ensemble.averaged([a], bag=False), [[1.0, 0, 0]])  # repeat 0 only
    np.testing.assert_allclose(ensemble.averaged([a, b], bag=True), [[0.25, 0.25, 0.5]])


def test_members_share_one_encoder_per_modality():
    union, cuts = ensemble.shared_encoders([{"text": "minilm", "image": "efficientnet_lite0"},
                                            {"text": "minilm", "image": "efficientnet_lite0_stages", "lexicon": "vader"}])
    assert union == {"text": "minilm", "image": "efficientnet_lite0_stages", "lexicon": "vader"}
    assert cuts == [{"image": [-1280, None]}, {}]
    with pytest.raises(ValueError, match="different image encoders"):
        ensemble.shared_encoders([{"image": "efficientnet_lite0"}, {"image": "densenet"}])


def test_the_shipped_checkpoint_predicts_the_averaged_fold_models(project):  # noqa: F811
    _trained(project)
    members = ["attention_fusion", "concat_fusion"]
    path = ensemble.build_checkpoint(project, members, bag=True, seed=0, path=project.path("ens.pt"))
    model, payload = load_checkpoint(path)
    assert payload["family"] == "ensemble" and len(model.members) == 2 * 2  # 2 members × 2 fold models
    _, data = cv_inputs(project, model_specs(project)["attention_fusion"], "single", load_parts(project, "single"))
    probs = predict_proba(model, data["test"])[0]
    expected = np.mean([ensemble.load_folds(project, m)["test"].mean(0) for m in members], axis=0)
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    # the test figures the card states are those of this checkpoint
    gold = load_parts(project, "single")["test"]["label_id"].astype(int).to_numpy()
    t = ensemble.test_metrics(project, members, True, [0, 1])
    assert t["accuracy"]["mean"] == pytest.approx(100 * float((probs.argmax(1) == gold).mean()))


def test_choosing_an_ensemble_never_reads_test(project, monkeypatch):  # noqa: F811
    _trained(project)
    project.ensemble = sections.EnsembleConfig(**{"candidates": [{"name": "bag", "members": ["kept"], "bag": True},
                                                {"name": "family", "members": ["kept", "concat_fusion"]}]})
    before = [(c["name"], c["kept"], c["scores"].tolist()) for c in ensemble.decide(project, "attention_fusion")]
    for m in ("attention_fusion", "concat_fusion"):  # scramble every test prediction the candidates have
        path = (RunPaths(project).predictions(m, "single") / "folds.npz")
        z = dict(np.load(path))
        z["test"] = np.random.default_rng(0).random(z["test"].shape).astype(np.float32)
        np.savez_compressed(path, **z)
    after = [(c["name"], c["kept"], c["scores"].tolist()) for c in ensemble.decide(project, "attention_fusion")]
    assert before == after and [c[0] for c in after] == ["bag", "family"]


def test_ship_writes_the_ensemble_when_it_beats_the_single_configuration(project, monkeypatch):  # noqa: F811
    _trained(project)
    project.ablation = sections.AblationConfig(**{"rows": [{"lever": "attention", "model": "attention_fusion"}]})
    project.ensemble = sections.EnsembleConfig(**{"ship": True,
                                 "candidates": [{"name": "the bag", "members": ["kept", "concat_fusion"], "bag": True}]})
    single = ensemble.fold_scores(project, ["attention_fusion"], False)
    real = ensemble.fold_scores
    # a candidate that wins on every fold by 5 points, whatever the tiny data say
    monkeypatch.setattr(ensemble, "fold_scores", lambda p, members, bag, dataset="single":
                        real(p, members, bag, dataset) if members == ["attention_fusion"] else single + 5)
    out = ship.run(project)
    model, payload = load_checkpoint(project.path(ship.ASSETS) / "default_model.pt")
    assert out["ensemble"] == payload["model_name"] == "the bag" and payload["family"] == "ensemble"
    assert payload["member_models"] == ["attention_fusion", "concat_fusion"] and len(model.members) == 4
    card = (project.path(ship.ASSETS) / "MODEL_CARD.md").read_text()
    assert "Shipped: an ensemble, one checkpoint" in card and "+5.00 ± 0.00" in card
    monkeypatch.setattr(ensemble, "fold_scores", lambda p, members, bag, dataset="single": single)  # a tie
    assert ship.run(project)["ensemble"] is None
    assert load_checkpoint(project.path(ship.ASSETS) / "default_model.pt")[1]["family"] == "attention_fusion"


def test_an_ensemble_forward_masks_like_its_members():
    from mmsent.models import build_model

    torch.manual_seed(0)
    member = {"family": "concat_fusion", "config": {"text_dim": 3, "image_dim": 2, "hidden": [4]}}
    model = build_model("ensemble", {"members": [{**member, "columns": {"image": [0, 2]}},
                                                 {**member, "columns": {"image": [-2, None]}}],
                                     "dims": {"text": 3, "image": 4}}).eval()
    batch = {"text": torch.randn(2, 3), "image": torch.randn(2, 4), "text_mask": torch.ones(2),
             "image_mask": torch.tensor([1.0, 0.0])}
    out = model(batch)["logits"]
    first = torch.softmax(model.members[0]({**batch, "image": batch["image"][:, :2]})["logits"], -1)
    second = torch.softmax(model.members[1]({**batch, "image": batch["image"][:, -2:]})["logits"], -1)
    torch.testing.assert_close(torch.softmax(out, -1), (first + second) / 2)


def test_declared_not_to_ship_an_ensemble_is_reported_and_never_chosen(project, monkeypatch):  # noqa: F811
    """``ensemble.ship: false`` (the default): a candidate that wins every fold is scored and reported
    beside the single configuration, but nothing is kept, the single configuration ships, and the
    reproducibility check counts no ensemble decision among its choices."""
    from mmsent.workflow import reproduce

    _trained(project)
    project.ablation = sections.AblationConfig(**{"rows": [{"lever": "attention", "model": "attention_fusion"}]})
    project.ensemble = sections.EnsembleConfig(**{
        "candidates": [{"name": "the bag", "members": ["kept", "concat_fusion"], "bag": True}]})
    single = ensemble.fold_scores(project, ["attention_fusion"], False)
    real = ensemble.fold_scores
    monkeypatch.setattr(ensemble, "fold_scores", lambda p, members, bag, dataset="single":
                        real(p, members, bag, dataset) if members == ["attention_fusion"] else single + 5)
    decided = ensemble.decide(project, "attention_fusion")
    assert decided[0]["verdict"].better and not decided[0]["kept"] and ensemble.shipped(decided) is None
    text = "\n".join(ensemble.lines(project, decided, "attention_fusion"))
    assert "Reported, not chosen" in text and "kept (CV)" not in text and "+5.00 ± 0.00" in text
    declared = reproduce.choices(project)
    assert declared["ensembles"] == {}
    # the check still shows how the rule read it, apart from the choices
    assert "- the bag: passes (+5.00 ± 0.00) here, passes (+5.00 ± 0.00) perturbed" in \
        reproduce.ensemble_readings(declared, declared)
    assert ship.run(project)["ensemble"] is None
    assert load_checkpoint(project.path(ship.ASSETS) / "default_model.pt")[1]["family"] == "attention_fusion"
    project.ensemble.ship = True  # the same scores, allowed to ship: the rule chooses
    allowed = reproduce.choices(project)
    assert allowed["ensembles"] == {"the bag": True}
    assert reproduce.ensemble_readings(allowed, allowed) == []  # a choice now: counted, not shown apart

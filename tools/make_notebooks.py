"""Regenerate the driver notebooks under notebooks/ (run: python tools/make_notebooks.py).

Each notebook is a thin driver: a parameters cell for papermill, then calls into mmsent.
"""

from pathlib import Path

from notebook import write_notebook

HERE = Path(__file__).resolve().parent.parent / "notebooks"

PARAMS = '''
# Parameters (papermill overrides these; None = the nearest params.yaml, default profile)
params_path = None
profile = None
'''

# notebooks 02-05: shown, not run, unless asked (the DVC stage passes -p run_stage=true)
STAGE_PARAMS = PARAMS + '''run_stage = False  # True retrains the stage and overwrites its DVC outputs; False shows them
'''

LOAD = '''
from IPython.display import Image, Markdown, display

from mmsent.config import load_params

params = load_params(params_path, profile=profile)
'''

write_notebook(HERE / "00_explore.ipynb", [
    ("md", """# 00 · Explore MVSA-Single and the shipped model

Works on a fresh clone after `make setup`, with the MVSA data (`params.yaml` → `data.root`) and the
model inside the package: no pipeline run. The `prepare` stage's table is made here if missing (a
minute); the text the `ocr` stage read inside the images is added where that stage has run.
Logic: `mmsent.evaluation.explore`."""),
    ("params", PARAMS + '''n_errors = 6  # errors shown with their explanations, most confident first
# score your own pair (last cell): any text, and an image path (or one relative to the MVSA folder), or None
my_text = "Ecstatic to be holding the first print copy of my new book :)"
my_image = "single/images/89.jpg"  # an MVSA-Single test image
'''),
    ("code", LOAD + '''import pandas as pd

from mmsent.evaluation import explore
from mmsent.serving.pipeline import Pipeline

table = explore.load_table(params)  # every pair, with the columns the filters use
pd.crosstab(table["split"], table["label"].fillna("(labels conflict)"), margins=True)'''),
    ("md", "## Browse pairs\n\nA sample with no filter, then the browser: class (pair label), split, whether the "
           "text and image labels agree, duplicate of a train pair (same image or text), tweet length in words, "
           "and OCR text found in the image (when the `ocr` stage has run); `sample` draws another set."),
    ("code", "explore.show(explore.browse(table))"),
    ("code", "explore.browser(table)"),
    ("md", "## The shipped model on the test split\n\nEvery test pair scored as a user's would be "
           "(raw tweet + image file, `Pipeline.predict_batch`); metrics by scikit-learn."),
    ("code", '''pipe = Pipeline.load()
scored = explore.score_split(pipe, table, "test")
metrics = explore.split_metrics(scored)
explore.show(explore.confusion_figure(metrics, f"shipped model · MVSA-Single test, n = {metrics['n']}"))
explore.per_class_table(metrics)'''),
    ("code", '''errors = explore.error_table(scored)  # wrong predictions, most confident in the wrong label first
print(f"{len(errors)} errors of {len(scored)} test pairs")
errors[["id", "label", "predicted", "p_wrong", "p_gold", "text_label", "image_label", "duplicate", "text_raw"]].head(15)'''),
    ("md", "The worst errors, explained by occlusion of the predicted label (`Pipeline.predict(..., explain=True)`): "
           "how much each word and each image region raises p(predicted); attention weights per modality."),
    ("code", '''for rank, row in enumerate(errors.head(n_errors).itertuples(), 1):
    result = explore.explain_pair(pipe, row.text_raw, row.image_path)
    explore.show(explore.explanation_figure(result, row.text_raw, row.image_path, explore.error_heading(row, rank),
                                            pipe.image_size))'''),
    ("md", "## Score your own pair\n\nSet `my_text` and `my_image` in the parameters cell (either may be None)."),
    ("code", '''image = explore.resolve_image(my_image, params)
result = explore.explain_pair(pipe, my_text, image)
heading = explore.pair_heading(result, explore.calibration(scored), pipe.temperature)
explore.show(explore.explanation_figure(result, my_text, image, heading, pipe.image_size))
{key: value for key, value in result.items() if key != "explanation"}'''),
])

write_notebook(HERE / "01_data.ipynb", [
    ("md", """# 01 · The MVSA data

Cleaned pairs, splits, decoding, image checks and the leakage audit. Everything below is
computed by `mmsent.data.report` from the outputs of the `prepare` and `features` stages;
this notebook only drives it and shows the result."""),
    ("params", PARAMS),
    ("code", LOAD + "from mmsent.data import report as data_report"),
    ("code", "written = data_report.build(params)\ndisplay(Markdown(written['data.md'].read_text()))"),
    ("code", "for name, path in written.items():\n    if path.suffix == '.png':\n        display(Image(filename=str(path)))"),
])

TRAIN = '''
from mmsent.evaluation import plots
from mmsent.training.runs import load_group, run_group

# run_stage False (Lab's default): read what the stage last wrote; nothing is trained or written
results = run_group(params, "{group}") if run_stage else load_group(params, "{group}")
runs = [(model, dataset) for model, by_dataset in results.items() for dataset in by_dataset]
for model, dataset in runs:
    m = results[model][dataset]
    print(f"{model:18s} {dataset:9s} acc {m['accuracy']['mean']:.2f} ± {m['accuracy']['std']:.2f}  "
          f"wF1 {m['weighted_f1']['mean']:.2f} ± {m['weighted_f1']['std']:.2f}  ({m['measured_on']})")
'''

FIGURES = '''
figures = {"{group}/learning_curves": plots.learning_curves(params, runs)}
# one confusion figure per dataset the group was run on: {group}/confusion_<dataset>
for dataset, fig in plots.confusion_figures(params, runs).items():
    figures[f"{group}/confusion_{dataset}"] = fig
figures["{group}/per_class_f1"] = plots.per_class_f1(params, runs){extra}
if run_stage:
    for name, fig in figures.items():
        display(Image(filename=str(plots.save_figure(fig, params, name))))
else:  # drawn for this session only: the stage's committed figures stay as it wrote them
    for fig in figures.values():
        display(Image(data=plots.png_bytes(fig)))
'''

for number, group, title, intro, extra in [
    ("02", "text", "Text baselines",
     "Majority class, the VADER lexicon rule, TF-IDF + logistic regression, a BiLSTM over GloVe-initialised "
     "tokens, and an MLP head on frozen MiniLM sentence vectors; on MVSA-Single and on MVSA-Multiple (text only).",
     ""),
    ("03", "image", "Image baselines",
     "An MLP head on frozen EfficientNet-Lite0 features, and DenseNet-121 (torchvision) trained end to end: from "
     "ImageNet weights when a weights file is given, otherwise from scratch (the metrics say which).", ""),
    ("04", "fusion", "Fusion",
     "The source system's concat head ([text ; image] → 1024 → 512 → 3), the thesis's modality-attention fusion "
     "(per-sample weights over text and image) and late fusion of unimodal probabilities.",
     '\nfigures["fusion/attention_weights"] = plots.attention_by_class(params, attention_model)'),
]:
    name = {"text": "02_text_baselines", "image": "03_image_baselines", "fusion": "04_fusion"}[group]
    write_notebook(HERE / f"{name}.ipynb", [
        ("md", f"# {number} · {title}\n\n{intro}\n\nEvery model is trained by `mmsent.training.loop.fit`. Heads on cached "
               "features are stopped by cross-validation over train + dev (`mmsent.training.protocol`; the learning curves "
               "are the scores on the split that early-stopped them: each fold model's inner split, or dev) "
               "and each seed's final model trains on train + dev for the "
               "cross-validated epoch count; the BiLSTM, DenseNet-121 and MVSA-Multiple models early-stop on dev. "
               "Test is read once per final model (`mmsent.evaluation.metrics`). "
               "This notebook only drives `mmsent.training.runs` and `mmsent.evaluation.plots`."),
        ("params", STAGE_PARAMS + ('attention_model = "attention_fusion"  # whose per-input attention weights to draw\n'
                                   if group == "fusion" else "")),
        ("code", LOAD),
        ("code", TRAIN.replace("{group}", group)),
        ("code", FIGURES.replace("{group}", group).replace("{extra}", extra)),
    ])

write_notebook(HERE / "05_tuning.ipynb", [
    ("md", "# 05 · Hyperparameter tuning (Optuna)\n\nOne study per model in `params.yaml` → `tuning.models`, each "
           "trial scored by **cross-validation over train + dev** (never test): a seeded Sobol sampler and no pruner, "
           "so which trials run does not depend on their scores. The values written to `params/tuned/best_<model>.yaml` "
           "(read by the training stages) are the simplest trial within one corrected standard error of the best. "
           "A study is named by a hash of its search space and protocol, so a changed space starts a new study. "
           "Logic: `mmsent.training.tune`."),
    ("params", STAGE_PARAMS),
    ("code", LOAD + "from mmsent.training import tune"),
    ("code", "# run_stage False (Lab's default): the values the stage last chose; nothing is tuned or written\n"
             "summary = tune.run(params) if run_stage else tune.load_summary(params)\nfor model, s in summary.items():\n"
             "    print(f\"{model}: chosen CV weighted F1 {s['chosen_cv_weighted_f1']:.2f} (best {s['best_cv_weighted_f1']:.2f}, "
             "one SE {s['one_se']:.2f}) after {s['trials']} trials: {s['chosen_params']}\")"),
    ("code", "for model in summary:\n"
             "    display(Image(filename=str(params.path(f'reports/figures/tuning/{model}_history.png'))))"),
])

write_notebook(HERE / "06_statistics.ipynb", [
    ("md", "# 06 · Significance of the declared comparisons\n\nThe questions in `params.yaml` → `report.questions`, "
           "each answered on every protocol where both models ran, by a two-level paired bootstrap over test pairs and "
           "seeds, Bonferroni-adjusted over the family — `mmsent.evaluation.stats`, on the saved test predictions."),
    ("params", PARAMS),
    ("code", LOAD + "import pandas as pd\nfrom mmsent.evaluation import stats"),
    ("code", "written = stats.run(params)\ntable = pd.read_csv(written['csv'])\n"
             "for row in table.itertuples():\n    print(f'{row.question} ({row.dataset}, {row.protocol}): {row.sentence}')"),
    ("code", "display(Markdown(written['md'].read_text()))"),
])

write_notebook(HERE / "07_report.ipynb", [
    ("md", "# 07 · Report\n\nAssembles `reports/REPORT.md` from the outputs of every stage (`mmsent.evaluation.report`)."),
    ("params", PARAMS),
    ("code", LOAD + "from mmsent.evaluation import report"),
    ("code", "path = report.build(params)\ndisplay(Markdown(path.read_text()))"),
])

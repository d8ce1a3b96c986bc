"""Evaluation: metrics, significance tests, the results and ablation reports, ensembles chosen by
cross-validation, figures and the report."""

"""Serving: the Pipeline (preprocess, forward, postprocess), explanations, batch scoring, the REST
API, the web UI, and the `ship` stage that puts the default model into the package."""

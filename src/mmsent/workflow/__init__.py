"""Running the pipeline: notebooks under papermill, every stage without DVC (`run-all`), the
reproducibility check, and benchmark helpers."""

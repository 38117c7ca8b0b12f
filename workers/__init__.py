"""Celery task entrypoints: parse the ids, call the pipeline, nothing else."""

"""Logic of the pipeline steps: plain functions ``run(event, *, <clients>, settings) -> dict``."""

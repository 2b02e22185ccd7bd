"""The Gradio demo over the VLP API (`make demo`): app.py builds the page on the Python client (vlp_client),
views.py turns API results into what the page shows (plain functions, unit-tested), run.py starts and stops it
(and local mode when it is not up)."""

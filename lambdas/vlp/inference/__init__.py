"""Clients of the model endpoints, one module per serving contract (docs/model-contracts.md):
``tgi`` (VLM, LLM), ``djl`` (intent_keywords, grounded_sam, clip_tagging, clip_interrogator), ``whisper`` (ASR),
over ``sagemaker.invoke`` (InvokeEndpoint + error classification)."""

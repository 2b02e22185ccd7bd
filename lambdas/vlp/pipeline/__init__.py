"""Logic of the pipeline steps: one module per step (vlp.steps), each with a plain function
``run(event, *, <clients>, settings)`` that returns its typed result (vlp.pipeline.models; validate: the context,
assemble: the response, as dicts); vlp.entry calls it, vlp.runtime wraps it."""

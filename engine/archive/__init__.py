"""Archive review: re-inspect a large image archive with a model, in-process or spread over a Ray cluster."""

"""World checks: the embedded worlds' gates, the linear probe, a frozen CLIP's dense proxy and the v3 budget rule."""

"""optimize: variants of a model dir (quantize, auto mixed precision, prune, cluster), see run.make_variant."""

"""The CCNet stage as pure functions: line dedup, language ID, perplexity, buckets.

Each module reproduces one step of facebookresearch/cc_net (``dedup -> lid -> keep_lang -> sp -> lm ->
pp_bucket``) and knows nothing of Beam; pipeline/ composes them into transforms.
"""

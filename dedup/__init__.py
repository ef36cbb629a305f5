"""MinHash signatures, Bloom-filter exact dedup, LSH banding and connected components (no Beam here)."""

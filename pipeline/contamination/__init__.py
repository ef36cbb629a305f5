"""Benchmark-contamination annotations: benchmark readers, the n-gram index on disk (build, load, fetch by
URI) and the shard step that adds the ``contam_*`` columns. The lookup itself is pure and lives in
signals/contamination.py."""

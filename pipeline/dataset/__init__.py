"""The output dataset: schema, RPv2 ids, the one shard_id <-> hive path layout, the Parquet writer, reading files back."""

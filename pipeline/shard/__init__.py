"""One shard end to end: the declared step list applied by one loop, the spool, the annotators, the accounting."""

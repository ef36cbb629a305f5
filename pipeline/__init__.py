"""rpv2 pipeline: Beam composition, CommonCrawl sources, the CCNet stage, sinks and the CLI."""

"""Reading CommonCrawl: snapshot listings, the WARC record parser, the WET and WARC readers, the read report."""

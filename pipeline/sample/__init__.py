"""The embedded sample: a CommonCrawl-layout mirror and small models built from text rpv2 ships (never imported by production code)."""

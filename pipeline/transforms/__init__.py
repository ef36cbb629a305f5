"""The Beam composites: the whole run, exact dedup, fuzzy dedup, the run summary, the runner choice."""

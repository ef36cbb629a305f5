"""Exports of the dataset: RedPajama-V2's release layout."""

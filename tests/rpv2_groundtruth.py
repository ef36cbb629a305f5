"""RedPajama-V2's public ground truth (../shared/groundtruth/rpv2/public), read for tests: its documents,
their expected signals and bands, and the duplicate groups docs.jsonl declares (test helper)."""

from __future__ import annotations

import json
from collections import defaultdict

import networkx as nx
from conftest import shared_path


def load_groundtruth():
    public = shared_path("groundtruth", "rpv2", "public")
    expected = [json.loads(line) for line in (public / "expected.jsonl").open()]
    docs = [json.loads(line) for line in (public / "docs.jsonl").open()]
    assert [e["id"] for e in expected] == [d["id"] for d in docs]
    return expected, docs


def known_groups(kinds: tuple[str, ...]) -> list[set[str]]:
    """Groups of ids that docs.jsonl declares duplicates (dup_of / near_dup_of name the source url)."""
    _, docs = load_groundtruth()
    by_url = defaultdict(list)
    for d in docs:
        by_url[d["url"]].append(d["id"])
    graph = nx.Graph()
    for d in docs:
        for kind in kinds:
            if d.get(kind):
                for source in by_url[d[kind]]:
                    graph.add_edge(d["id"], source)
    return [set(c) for c in nx.connected_components(graph)]

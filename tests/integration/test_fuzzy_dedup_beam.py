"""Fuzzy dedup end to end: Parquet documents in the pipeline's layout -> clusters, on the Beam engine
(DirectRunner, 1 and 2 workers) and the local engine, which must write the same bytes.

Documents are real English text (../shared/realdata wikitext-2) with near duplicates made by changing
a few words, banded by our RPv2 MinHash (dedup.minhash)."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

import apache_beam as beam
import networkx as nx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.util import assert_that, equal_to
from conftest import shared_path
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup.minhash import RPv2MinHash
from pipeline.cli import main as cli_main
from pipeline.dataset.ids import document_id_int
from pipeline.transforms.fuzzy_dedup import FuzzyDedup, ReadDedupDocuments, run_beam, run_local

SIGNATURE_COLUMNS = ["signature_sim1.0", "signature_sim0.9", "signature_sim0.8", "signature_sim0.7"]
PARTS = [(0, "en", "head"), (0, "en", "middle"), (1, "en", "head"), (1, "de", "middle")]


def write_documents(root: Path, docs: list[dict], with_shard_id: bool = True) -> list[str]:
    """Write docs round-robin into the PARTS files of the documents layout; assigns RPv2 ids and returns
    them in the order of ``docs``."""
    per_file = defaultdict(list)
    for i, doc in enumerate(docs):
        per_file[PARTS[i % len(PARTS)]].append(doc)
    for (shard, lang, bucket), rows in per_file.items():
        shard_id = f"2023-06/{shard:04d}/{lang}_{bucket}.json.gz"
        for row, doc in enumerate(rows):
            doc["id"] = f"{shard_id}/{row}"
            doc["id_int"] = document_id_int(doc["id"])
            doc["shard_id"] = shard_id
        fields = [("id", pa.string()), ("id_int", pa.uint64())]
        fields += [("shard_id", pa.string())] if with_shard_id else []
        fields += [("raw_content", pa.string())] + [(c, pa.list_(pa.binary())) for c in SIGNATURE_COLUMNS]
        schema = pa.schema(fields)
        directory = root / "documents" / "snapshot=2023-06" / f"language={lang}" / f"bucket={bucket}"
        directory.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist([{k: d.get(k) for k in schema.names} for d in rows], schema)
        pq.write_table(table, directory / f"{shard:04d}.parquet")
    return [d["id"] for d in docs]


def change_words(words: list[str], count: int, rng: random.Random) -> list[str]:
    out = list(words)
    for _ in range(count):
        out[rng.randrange(len(out))] = rng.choice(["harbour", "legend", "quietly", "seventeen", "velvet"])
    return out


@pytest.fixture(scope="module")
def near_duplicates(tmp_path_factory) -> tuple[Path, list[set[str]]]:
    """~70 documents of 400-700 real words; 12 sources get 1-3 near duplicates (1-3 words changed),
    3 get an exact copy; 3 documents are too short for a signature. Returns (dir, planted groups)."""
    rng = random.Random(2014)
    text = shared_path("realdata", "corpora", "wikitext-2_test.txt").read_text(encoding="utf-8")
    paragraphs = [p.split() for p in text.split("\n") if len(p.split()) > 40 and not p.strip().startswith("=")]
    sources, current = [], []
    for words in paragraphs:
        current += words
        if len(current) >= 400:
            sources.append(current[:700])
            current = []
        if len(sources) == 50:
            break
    minhash = RPv2MinHash()
    docs, group_of = [], []
    for s, words in enumerate(sources):
        variants = [words]
        if s < 12:
            variants += [change_words(words, rng.randint(1, 3), rng) for _ in range(rng.randint(1, 3))]
        elif s < 15:
            variants.append(words)
        for v in variants:
            docs.append({"raw_content": " ".join(v), **minhash.banded_signatures(v)})
            group_of.append(s)
    for words in (["short"], "a page that is far too short".split(), []):
        docs.append({"raw_content": " ".join(words), **minhash.banded_signatures(words)})
        group_of.append(-len(docs))
    order = list(range(len(docs)))
    rng.shuffle(order)
    docs = [docs[i] for i in order]
    group_of = [group_of[i] for i in order]
    root = tmp_path_factory.mktemp("near_dups")
    ids = write_documents(root, docs, with_shard_id=False)  # shard_id derived from id, as documented
    groups = defaultdict(set)
    for doc_id, g in zip(ids, group_of, strict=True):
        groups[g].add(doc_id)
    return root, [g for g in groups.values() if len(g) > 1]


def reference_clusters(docs: list[dict], column: str) -> dict[str, tuple[int, int]]:
    """id -> (minimum id_int of its component, component size): networkx connected components over
    brute-force LSH band collisions (documents whose ``column`` has the same bytes at the same band
    index are linked), independent of the code under test."""
    graph = nx.Graph()
    graph.add_nodes_from(range(len(docs)))
    members = defaultdict(list)
    for i, doc in enumerate(docs):
        for band_index, band in enumerate(doc[column] or []):
            members[(band_index, bytes(band))].append(i)
    for group in members.values():
        graph.add_edges_from((group[0], m) for m in group[1:])
    out = {}
    for component in nx.connected_components(graph):
        cluster = min(docs[i]["id_int"] for i in component)
        out.update({docs[i]["id"]: (cluster, len(component)) for i in component})
    return out


def read_dir(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def flags(out: Path, threshold: str) -> list[dict]:
    files = sorted((out / f"clusters_sim{threshold}" / "documents").rglob("*.parquet"))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


@pytest.fixture(scope="module")
def local_output(near_duplicates, tmp_path_factory) -> Path:
    root, _ = near_duplicates
    out = tmp_path_factory.mktemp("local")
    counters = run_local(str(root), str(out), 0.7)
    assert counters["documents_without_signature"] == 3
    return out


def test_planted_near_duplicates_are_clustered_and_nothing_else(near_duplicates, local_output):
    _, planted = near_duplicates
    rows = flags(local_output, "0.7")
    cluster_of = {r["id"]: r["cluster_id"] for r in rows}
    found = defaultdict(set)
    for doc_id, cluster in cluster_of.items():
        found[cluster].add(doc_id)
    assert sorted(map(sorted, (g for g in found.values() if len(g) > 1))) == sorted(map(sorted, planted))


def test_every_document_is_flagged_and_each_cluster_keeps_its_minimum(near_duplicates, local_output):
    root, planted = near_duplicates
    rows = flags(local_output, "0.7")
    n_docs = sum(pq.read_metadata(p).num_rows for p in (root / "documents").rglob("*.parquet"))
    assert len(rows) == n_docs == len({r["id"] for r in rows})
    by_cluster = defaultdict(list)
    for r in rows:
        by_cluster[r["cluster_id"]].append(r)
        assert r["is_representative"] == (r["id_int"] == r["cluster_id"])
    for members in by_cluster.values():
        assert members[0]["cluster_id"] == min(m["id_int"] for m in members)
        assert sum(m["is_representative"] for m in members) == 1
    assert sum(not r["is_representative"] for r in rows) == sum(len(g) - 1 for g in planted)


def test_clusters_files_have_rpv2_schema_and_only_clustered_documents(near_duplicates, local_output):
    _, planted = near_duplicates
    files = sorted((local_output / "clusters_sim0.7" / "clusters").rglob("*.clusters.parquet"))
    assert files and all(f.name.endswith(("_head.clusters.parquet", "_middle.clusters.parquet")) for f in files)
    table = pa.concat_tables([pq.read_table(f) for f in files])
    assert table.schema.names[:4] == ["id", "id_int", "cluster_id", "shard_id"]
    assert table.schema.field("cluster_id").type == pa.uint64()
    assert sorted(table.column("id").to_pylist()) == sorted(i for g in planted for i in g)
    assert all(i.rsplit("/", 1)[0] == s for i, s in zip(table["id"].to_pylist(), table["shard_id"].to_pylist(),
                                                         strict=True))


def test_beam_engine_writes_the_same_bytes_as_the_local_engine(near_duplicates, local_output, tmp_path):
    root, _ = near_duplicates
    counters = run_beam(str(root), str(tmp_path), 0.7)
    assert counters["documents"] == len(flags(local_output, "0.7"))
    assert read_dir(tmp_path) == read_dir(local_output)
    assert not (tmp_path / "clusters_sim0.7" / "_work").exists()


def test_beam_output_bytes_do_not_depend_on_the_worker_count(near_duplicates, tmp_path):
    root, _ = near_duplicates
    one, two = tmp_path / "one", tmp_path / "two"
    run_beam(str(root), str(one), 0.8, ["--direct_num_workers=1"])
    run_beam(str(root), str(two), 0.8, ["--direct_num_workers=2", "--direct_running_mode=multi_processing"])
    assert read_dir(one) and read_dir(one) == read_dir(two)


def test_documents_files_are_read_in_batches_of_batch_rows(near_duplicates):
    """Every file reaches the pipeline as record batches of at most ``batch_rows`` rows, each its own
    source, all its rows once: no step downstream sees a whole file."""
    root, _ = near_duplicates
    files = sorted(str(f) for f in (root / "documents").rglob("*.parquet"))
    expected = []
    for f in files:
        rows = pq.read_metadata(f).num_rows
        assert rows > 2 * 7  # several batches per file
        expected += [(f"{f}#{i}", min(7, rows - 7 * i)) for i in range(-(-rows // 7))]
    with beam.Pipeline() as p:
        sizes = (p | beam.Create(files) | ReadDedupDocuments(0.7, batch_rows=7)
                 | beam.MapTuple(lambda source, table: (source, table.num_rows)))
        assert_that(sizes, equal_to(expected))


def test_beam_engine_in_tiny_batches_writes_the_same_clusters(near_duplicates, local_output, tmp_path):
    """The Beam engine reading files 7 rows at a time writes the same bytes as with the default batch
    size and as the local engine, and the clusters of the networkx reference on the input's bands."""
    root, _ = near_duplicates
    run_beam(str(root), str(tmp_path / "tiny"), 0.7, batch_rows=7)
    run_beam(str(root), str(tmp_path / "default"), 0.7)
    assert read_dir(tmp_path / "tiny") and read_dir(tmp_path / "tiny") == read_dir(tmp_path / "default")
    assert read_dir(tmp_path / "tiny") == read_dir(local_output)
    docs = [row for f in sorted((root / "documents").rglob("*.parquet"))
            for row in pq.read_table(f, columns=["id", "id_int", "signature_sim0.7"]).to_pylist()]
    reference = reference_clusters(docs, "signature_sim0.7")
    rows = flags(tmp_path / "tiny", "0.7")
    assert {r["id"]: r["cluster_id"] for r in rows} == {i: c for i, (c, _) in reference.items()}
    assert all(r["is_representative"] == (r["id_int"] == r["cluster_id"]) for r in rows)
    assert any(size > 1 for _, size in reference.values())


def path_graph_documents(n: int, seed: int) -> list[dict]:
    """Documents whose 0.7 bands chain them into one path (doc i shares band i mod 14 with doc i+1),
    in random id order: the graph large-star/small-star needs several rounds for."""
    rng = np.random.default_rng(seed)
    bands = rng.integers(0, 256, (n, 14, 36), dtype=np.uint8)
    for i in range(n - 1):
        bands[i + 1, i % 14] = bands[i, i % 14]
    return [{"signature_sim0.7": [bytes(b) for b in bands[i]]} for i in range(n)]


def test_beam_engine_iterates_passes_until_converged(tmp_path):
    root = tmp_path / "in"
    write_documents(root, path_graph_documents(120, seed=3))
    counters = run_beam(str(root), str(tmp_path / "beam"), 0.7, rounds_per_pass=1)
    assert counters["cc_rounds_run"] > 1
    run_local(str(root), str(tmp_path / "local"), 0.7)
    assert read_dir(tmp_path / "beam") == read_dir(tmp_path / "local")
    assert len({r["cluster_id"] for r in flags(tmp_path / "beam", "0.7")}) == 1


def test_beam_engine_gives_up_when_max_rounds_do_not_converge(tmp_path):
    root = tmp_path / "in"
    write_documents(root, path_graph_documents(300, seed=4))
    with pytest.raises(RuntimeError, match="did not converge"):
        run_beam(str(root), str(tmp_path / "out"), 0.7, rounds_per_pass=1, max_rounds=1)


@st.composite
def band_graphs(draw):
    n = draw(st.integers(1, 20))
    seed = draw(st.integers(0, 2**32 - 1))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.integers(0, 13)),
                          max_size=2 * n))
    return n, seed, pairs


@settings(max_examples=5, deadline=None)
@given(band_graphs(), st.sampled_from([{}, {"parts": 3, "pass_rows": 4}]))
def test_fuzzy_dedup_transform_components_equal_networkx(graph, sizes):
    """The single-pipeline PTransform (what `rpv2 run` appends) on random band-sharing graphs, with the
    default partitions and with 3 partitions whose grouped steps run in several passes of 4 rows."""
    n, seed, pairs = graph
    rng = np.random.default_rng(seed)
    bands = rng.integers(0, 256, (n, 14, 36), dtype=np.uint8)
    for a, b, k in pairs:
        bands[b, k] = bands[a, k]
    docs = [{"id": f"2023-06/0000/en_head.json.gz/{i}", "signature_sim0.7": [bytes(x) for x in bands[i]]}
            for i in range(n)]
    for d in docs:
        d["id_int"] = document_id_int(d["id"])
    reference = reference_clusters(docs, "signature_sim0.7")
    expected = [(d["id"], reference[d["id"]][0], d["id_int"] == reference[d["id"]][0], reference[d["id"]][1] > 1)
                for d in docs]
    with beam.Pipeline() as p:
        out = (
            p
            | beam.Create(docs)
            | FuzzyDedup(0.7, rounds=5, **sizes)
            | beam.Map(lambda r: (r["id"], r["cluster_id"], r["is_representative"], r["in_cluster"]))
        )
        assert_that(out, equal_to(expected))


def test_bad_input_is_counted_and_the_rest_deduplicated(near_duplicates, tmp_path):
    root, planted = near_duplicates
    bad = tmp_path / "in"
    docs = [{"signature_sim0.7": [b"x" * 36] * 13}, {"signature_sim0.7": [b"y" * 35] * 14}]
    write_documents(bad, docs)
    for f in (root / "documents").rglob("*.parquet"):
        target = bad / f.relative_to(root)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(f.read_bytes())
    corrupt = bad / "documents" / "snapshot=2023-06" / "language=fr" / "bucket=head" / "0003.parquet"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"PAR1 this is not parquet")
    local = run_local(str(bad), str(tmp_path / "local"), 0.7)
    counters = run_beam(str(bad), str(tmp_path / "beam"), 0.7)
    for c in (local, counters):
        assert c["unreadable_files"] == 1 and c["documents_bad_signature"] == 2
    assert read_dir(tmp_path / "beam") == read_dir(tmp_path / "local")
    assert len(flags(tmp_path / "local", "0.7")) == local["documents"]


def test_cli_runs_the_local_engine(near_duplicates, tmp_path, capsys):
    root, planted = near_duplicates
    code = cli_main(["dedup", "fuzzy", "--threshold", "0.7", str(root), "--output", str(tmp_path),
                     "--engine", "local"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["output"] == str(tmp_path / "clusters_sim0.7")
    rows = flags(tmp_path, "0.7")
    assert sum(not r["is_representative"] for r in rows) == sum(len(g) - 1 for g in planted)


def test_cli_rejects_a_threshold_without_bands(near_duplicates, tmp_path):
    root, _ = near_duplicates
    assert cli_main(["dedup", "fuzzy", "--threshold", "0.75", str(root), "--engine", "local"]) == 2


def test_ids_alone_suffice_id_int_and_shard_id_are_derived_as_rpv2(tmp_path):
    import pyarrow.compute as pc

    minhash = RPv2MinHash()
    text = shared_path("realdata", "corpora", "botchan_en.txt").read_text(encoding="utf-8").split()
    words = text[1000:1400]
    docs = [{"id": f"2023-06/0007/en_head.json.gz/{i}", "signature_sim0.9": minhash.banded_signatures(w)[
        "signature_sim0.9"]} for i, w in enumerate([words, words, text[5000:5400]])]
    schema = pa.schema([("id", pa.string()), ("signature_sim0.9", pa.list_(pa.binary()))])
    directory = tmp_path / "in" / "documents" / "snapshot=2023-06" / "language=en" / "bucket=head"
    directory.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(docs, schema), directory / "0007.parquet")
    run_local(str(tmp_path / "in"), str(tmp_path / "local"), 0.9)
    run_beam(str(tmp_path / "in"), str(tmp_path / "beam"), 0.9)
    assert read_dir(tmp_path / "beam") == read_dir(tmp_path / "local")
    clusters = pq.read_table(tmp_path / "local" / "clusters_sim0.9" / "clusters" / "2023-06" / "0007" /
                             "en_head.clusters.parquet")
    assert sorted(clusters["id"].to_pylist()) == ["2023-06/0007/en_head.json.gz/0", "2023-06/0007/en_head.json.gz/1"]
    assert clusters["id_int"].to_pylist() == [document_id_int(i) for i in clusters["id"].to_pylist()]
    assert set(clusters["shard_id"].to_pylist()) == {"2023-06/0007/en_head.json.gz"}
    assert pc.sum(clusters["is_representative"]).as_py() == 1


def run_transform(docs: list[dict], rounds: int, **sizes):
    from pipeline.transforms.fuzzy_dedup import converged

    p = beam.Pipeline()
    _ = p | beam.Create(docs) | FuzzyDedup(0.7, rounds=rounds, **sizes)
    result = p.run()
    result.wait_until_finish()
    return converged(result, rounds)


def test_converged_tells_whether_the_unrolled_rounds_sufficed():
    docs = path_graph_documents(60, seed=5)
    for i, d in enumerate(docs):
        d["id"] = f"2023-06/0000/en_head.json.gz/{i}"
        d["id_int"] = document_id_int(d["id"])
    assert not run_transform(docs, rounds=1)
    assert run_transform(docs, rounds=8)
    assert run_transform(docs, rounds=8, parts=2, pass_rows=10)  # several passes per partition


def test_groundtruth_near_duplicates_on_both_engines(tmp_path):
    """RPv2's own bands for its 262 ground-truth documents, laid out as the pipeline writes them: both
    engines find exactly the exact and near duplicates docs.jsonl declares, with the same bytes."""
    from rpv2_groundtruth import known_groups, load_groundtruth

    expected, docs = load_groundtruth()
    per_file = defaultdict(list)
    for e, d in zip(expected, docs, strict=True):
        snapshot, shard, name = d["shard_id"].split("/")
        lang, bucket = name[: -len(".json.gz")].split("_")
        row = {"id": e["id"], "id_int": e["id_int"], "shard_id": d["shard_id"]}
        row.update({c: None if e["minhash"][c] is None else [bytes.fromhex(h) for h in e["minhash"][c]]
                    for c in SIGNATURE_COLUMNS})
        per_file[(snapshot, lang, bucket, shard)].append(row)
    schema = pa.schema([("id", pa.string()), ("id_int", pa.uint64()), ("shard_id", pa.string())]
                       + [(c, pa.list_(pa.binary())) for c in SIGNATURE_COLUMNS])
    for (snapshot, lang, bucket, shard), rows in per_file.items():
        directory = tmp_path / "in" / "documents" / f"snapshot={snapshot}" / f"language={lang}" / f"bucket={bucket}"
        directory.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema), directory / f"{shard}.parquet")
    run_beam(str(tmp_path / "in"), str(tmp_path / "beam"), 0.7)
    run_beam(str(tmp_path / "in"), str(tmp_path / "beam_tiny"), 0.7, batch_rows=7)
    run_local(str(tmp_path / "in"), str(tmp_path / "local"), 0.7)
    assert read_dir(tmp_path / "beam") == read_dir(tmp_path / "local") == read_dir(tmp_path / "beam_tiny")
    rows = flags(tmp_path / "beam", "0.7")
    assert len(rows) == len(expected)
    groups = defaultdict(set)
    for r in rows:
        groups[r["cluster_id"]].add(r["id"])
    found = [g for g in groups.values() if len(g) > 1]
    assert sorted(map(sorted, found)) == sorted(map(sorted, known_groups(("dup_of", "near_dup_of"))))

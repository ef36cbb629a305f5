"""Contamination annotations against a brute-force set intersection, on real text with planted passages.

The stand-in benchmarks are real text: wikitext-2's test paragraphs (and its valid paragraphs as a second
benchmark); the documents are real RPv2 ground-truth pages and lingua web sentences, into which whole
benchmark paragraphs and slices of them are planted. The reference (tests/contamination_reference.py)
counts n-grams as plain Python sets of word tuples, with no hashing at all, and the index must give exactly
the same fraction and longest span per document and benchmark.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import numpy as np
import pytest

from pipeline.contamination.index import IndexLoadError, build_index, load_index
from pipeline.contamination.sources import BenchmarkError
from signals.contamination import MAX_OVERLAP, ContaminationMatcher
from signals.document import Document
from tests.conftest import shared_path
from tests.contamination_reference import gram_tuples, reference_overlap, reference_set, text_passages, words

WIKI_TEST = shared_path("realdata", "corpora", "wikitext-2_test.txt")
WIKI_VALID = shared_path("realdata", "corpora", "wikitext-2_valid.txt")


# ------------------------------------------------------------------------------------------ real data


def real_documents() -> list[str]:
    with open(shared_path("groundtruth", "rpv2", "public", "docs.jsonl"), encoding="utf-8") as handle:
        docs = [json.loads(line)["raw_content"] for line in handle]
    lingua = shared_path("realdata", "groundtruth", "langid", "lingua_sentences")
    for lang in ("en", "de", "fr"):
        sentences = (lingua / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
        docs += ["\n".join(sentences[i:i + 12]) for i in range(0, 240, 12)]
    return docs


def plant(document: str, passage: str, rng: random.Random) -> str:
    """``passage`` inserted into ``document`` at a random line break or word boundary."""
    cuts = [0, len(document)] + [i for i, ch in enumerate(document) if ch in " \n"]
    cut = rng.choice(cuts)
    return f"{document[:cut]} {passage.strip()} {document[cut:]}"


def planted_documents(benchmarks: dict[str, list[str]], seed: int = 0, count: int = 160) -> list[str]:
    """Real documents, most with one to three benchmark passages (whole, or a slice of words) planted."""
    rng = random.Random(seed)
    base = real_documents()
    docs = []
    for i in range(count):
        text = base[i % len(base)]
        for _ in range(rng.choice((0, 1, 1, 2, 3))):
            source = rng.choice(sorted(benchmarks))
            passage = rng.choice(benchmarks[source])
            pw = passage.split()
            if rng.random() < 0.5 and len(pw) > 30:
                start = rng.randrange(len(pw) - 20)
                passage = " ".join(pw[start:start + rng.randint(8, 40)])
            text = plant(text, passage, rng)
        docs.append(text)
    return docs


@pytest.fixture(scope="module")
def wiki_passages() -> dict[str, list[str]]:
    return {"wikitest": text_passages(WIKI_TEST), "wikivalid": text_passages(WIKI_VALID)}


@pytest.fixture(scope="module")
def two_benchmark_index(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("index") / "idx"
    build_index([("wikitest", str(WIKI_TEST)), ("wikivalid", str(WIKI_VALID))], out, n=13)
    return out


# ---------------------------------------------------------------------------------------------- tests


def test_exact_index_equals_brute_force_set_intersection(two_benchmark_index, wiki_passages):
    index = load_index(two_benchmark_index)
    refs = {name: reference_set(passages, 13) for name, passages in wiki_passages.items()}
    docs = planted_documents(wiki_passages)
    contaminated = 0
    for text in docs:
        got = index.matcher.annotate_text(text)
        best = 0.0
        for name, grams in refs.items():
            frac, span = reference_overlap(text, grams, 13)
            assert got[f"contam_{name}_frac"] == pytest.approx(frac, abs=0, rel=1e-12), (name, text[:80])
            assert got[f"contam_{name}_span"] == span, (name, text[:80])
            best = max(best, frac)
        assert got[MAX_OVERLAP] == pytest.approx(best, abs=0, rel=1e-12)
        contaminated += best > 0
    assert 0.4 * len(docs) < contaminated < len(docs)  # planted ones found, clean ones stay clean


@pytest.mark.parametrize("n", [1, 5, 8])
def test_other_n_equals_brute_force(tmp_path, wiki_passages, n):
    build_index([("wikitest", str(WIKI_TEST))], tmp_path / "idx", n=n, partition_bits=2)
    index = load_index(tmp_path / "idx")
    grams = reference_set(wiki_passages["wikitest"], n)
    for text in planted_documents({"wikitest": wiki_passages["wikitest"]}, seed=n, count=60):
        frac, span = reference_overlap(text, grams, n)
        got = index.matcher.annotate_text(text)
        assert (got["contam_wikitest_frac"], got["contam_wikitest_span"]) == (pytest.approx(frac, rel=1e-12), span)


def test_index_counts_equal_the_reference_sets(two_benchmark_index, wiki_passages):
    manifest = load_index(two_benchmark_index).manifest
    for name, passages in wiki_passages.items():
        entry = manifest["benchmarks"][name]
        assert entry["ngrams_unique"] == len(reference_set(passages, 13))
        assert entry["ngrams"] == sum(len(gram_tuples(p, 13)) for p in passages)
        assert entry["passages"] == len(passages)
        assert entry["passages_too_short"] == sum(len(words(p)) < 13 for p in passages)


def test_partitions_in_order_are_one_sorted_array_and_builds_are_reproducible(tmp_path):
    first = build_index([("wikitest", str(WIKI_TEST))], tmp_path / "a", n=13)
    build_index([("wikitest", str(WIKI_TEST))], tmp_path / "b", n=13)
    files = sorted(first["benchmarks"]["wikitest"]["files"], key=lambda f: f["partition"])
    assert len(files) == 16
    keys = np.concatenate([np.load(tmp_path / "a" / f["path"]) for f in files])
    assert keys.dtype == np.uint64 and np.all(keys[1:] > keys[:-1])
    for name in ("manifest.json", "SHA256SUMS", *(f["path"] for f in files)):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_bloom_index_finds_every_match_and_few_false_ones(tmp_path, wiki_passages):
    fpr = 0.01
    manifest = build_index([("wikitest", str(WIKI_TEST))], tmp_path / "idx", n=13, bloom_fpr=fpr)
    assert manifest["benchmarks"]["wikitest"]["storage"] == "bloom"
    assert manifest["benchmarks"]["wikitest"]["bloom"]["fpr"] == fpr
    assert manifest["benchmarks"]["wikitest"]["bloom"]["expected_fpr"] < 2 * fpr
    matcher = load_index(tmp_path / "idx").matcher
    grams = reference_set(wiki_passages["wikitest"], 13)
    false_hits = clean_positions = 0
    for text in planted_documents({"wikitest": wiki_passages["wikitest"]}, seed=3):
        positions = gram_tuples(text, 13)
        from signals.contamination import text_ngram_hashes

        found = matcher.matches(text_ngram_hashes(text, 13))["wikitest"]
        truth = np.array([g in grams for g in positions], dtype=bool)
        assert np.all(found[truth])  # no false negatives
        false_hits += int(np.count_nonzero(found & ~truth))
        clean_positions += int(np.count_nonzero(~truth))
    assert false_hits <= 3 * fpr * clean_positions + 5


def test_document_view_gives_the_same_columns(two_benchmark_index, wiki_passages):
    matcher = load_index(two_benchmark_index).matcher
    for text in planted_documents(wiki_passages, seed=7, count=40):
        assert matcher.annotate_content(Document(text).normalized_content) == matcher.annotate_text(text)


def test_jsonl_and_parquet_sources_give_the_plain_text_index(tmp_path, wiki_passages):
    import pyarrow as pa
    import pyarrow.parquet as pq

    passages = wiki_passages["wikitest"]
    with gzip.open(tmp_path / "b.jsonl.gz", "wt", encoding="utf-8") as handle:
        for p in passages:
            handle.write(json.dumps({"id": 1, "question": p}) + "\n")
    pq.write_table(pa.table({"passage": passages, "label": list(range(len(passages)))}), tmp_path / "b.parquet")
    built = [build_index([("b", str(tmp_path / name))], tmp_path / name.replace(".", "_"), n=13)
             for name in ("b.jsonl.gz", "b.parquet")]
    plain = build_index([("b", str(WIKI_TEST))], tmp_path / "plain", n=13)
    assert built[0]["benchmarks"]["b"]["text_fields"] == ["question"]
    assert built[1]["benchmarks"]["b"]["text_fields"] == ["passage"]
    for manifest in built:
        got = [(f["count"], f["sha256"]) for f in manifest["benchmarks"]["b"]["files"]]
        assert got == [(f["count"], f["sha256"]) for f in plain["benchmarks"]["b"]["files"]]


def test_matcher_orders_and_masks_many_benchmarks(tmp_path, wiki_passages):
    """Bits of the shared exact table do not leak between benchmarks: one paragraph per benchmark."""
    passages = [p for p in wiki_passages["wikitest"] if len(words(p)) > 40][:20]
    specs = []
    for i, passage in enumerate(passages):
        (tmp_path / f"p{i}.txt").write_text(passage, encoding="utf-8")
        specs.append((f"p{i}", str(tmp_path / f"p{i}.txt")))
    build_index(specs, tmp_path / "idx", n=13)
    matcher: ContaminationMatcher = load_index(tmp_path / "idx").matcher
    assert matcher.benchmarks == tuple(name for name, _ in specs)
    for i, passage in enumerate(passages):
        got = matcher.annotate_text(passage)
        for j, other in enumerate(passages):
            frac, span = reference_overlap(passage, reference_set([other], 13), 13)
            assert (got[f"contam_p{j}_frac"], got[f"contam_p{j}_span"]) == (pytest.approx(frac, rel=1e-12), span)
        assert got[f"contam_p{i}_frac"] == 1.0


def test_short_documents_have_no_overlap(two_benchmark_index):
    matcher = load_index(two_benchmark_index).matcher
    for text in ("", "   ", "Robert is an English film , television and theatre actor"):
        got = matcher.annotate_text(text)
        assert got[MAX_OVERLAP] == 0.0 and got["contam_wikitest_span"] == 0.0


@pytest.mark.parametrize(
    ("benchmarks", "kwargs", "message"),
    [
        ([("Bad-Name", "WIKI")], {}, "benchmark name"),
        ([("a", "WIKI"), ("a", "WIKI")], {}, "given twice"),
        ([("a", "/nonexistent/file.txt")], {}, "no such file"),
        ([("a", "WIKI")], {"n": 0}, "--n must be >= 1"),
        ([("a", "WIKI")], {"bloom_fpr": 1.5}, "--bloom-fpr"),
        ([("a", "DOCS")], {"text_fields": ["url"]}, "is empty"),
        ([("a", "NOTEXT")], {}, "no text field"),
        ([("a", "EMPTY")], {}, "is empty"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, benchmarks, kwargs, message):
    (tmp_path / "notext.jsonl").write_text('{"id": 1, "label": 2}\n', encoding="utf-8")
    (tmp_path / "empty.txt").write_text("\n\n", encoding="utf-8")
    files = {"WIKI": str(WIKI_TEST), "DOCS": str(shared_path("groundtruth", "rpv2", "public", "docs.jsonl")),
             "NOTEXT": str(tmp_path / "notext.jsonl"), "EMPTY": str(tmp_path / "empty.txt")}
    specs = [(name, files.get(path, path)) for name, path in benchmarks]
    with pytest.raises(BenchmarkError, match=message) as caught:
        build_index(specs, tmp_path / "idx", **kwargs)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "idx").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_corrupt_or_foreign_index_is_refused(tmp_path):
    manifest = build_index([("wikitest", str(WIKI_TEST))], tmp_path / "idx", n=13)
    part = tmp_path / "idx" / manifest["benchmarks"]["wikitest"]["files"][3]["path"]
    part.write_bytes(part.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(IndexLoadError, match="sha256"):
        load_index(tmp_path / "idx")
    with pytest.raises(IndexLoadError, match="not a contamination index"):
        load_index(tmp_path)


@pytest.mark.parametrize("slots", ["byte", "bit"])
@pytest.mark.parametrize("size", [0, 1, 31, 32, 33, 1000, 70_001])
def test_exact_table_lookup_equals_set_membership(size, slots, monkeypatch):
    """The two-level search (fences, then a block of keys) at every block boundary, below the first and
    above the last key, and for the padded copies of the last key; with either occupancy table."""
    from signals import contamination
    from signals.contamination import ExactNgramTable

    if slots == "bit":
        monkeypatch.setattr(contamination, "_BYTE_SLOTS_BITS", 0)
    rng = np.random.default_rng(size)
    sets = [np.unique(rng.integers(0, 2**64, size=size, dtype=np.uint64)) for _ in range(3)]
    sets[1] = np.unique(np.concatenate([sets[1], sets[0][::2]]))  # shared keys carry both bits
    table = ExactNgramTable(sets)
    everything = np.concatenate([*sets, rng.integers(0, 2**64, size=5000, dtype=np.uint64),
                                 np.array([0, 2**64 - 1], dtype=np.uint64)])
    masks = table.lookup(everything)
    members = [set(s.tolist()) for s in sets]
    expected = [sum(1 << i for i, m in enumerate(members) if value in m) for value in everything.tolist()]
    assert masks.tolist() == expected


def test_contamination_step_follows_signals_only_with_an_index():
    from pipeline.shard.plan import check_plan, with_contamination

    default = ("read", "line_dedup", "lid", "keep_language", "perplexity", "bucket", "signals", "minhash")
    assert with_contamination(default, None) == default
    assert with_contamination(default, "idx") == (*default[:7], "contamination", "minhash")
    assert with_contamination(default[:6], "idx") == (*default[:6], "contamination")
    declared = ("read", "lid", "contamination", "signals")
    assert with_contamination(declared, "idx") == check_plan(declared)
    assert with_contamination(declared, None) == ("read", "lid", "signals")

"""The fast paths of `rpv2 signals` give the values of the slow ones they replace.

Speed must never change a value (the RPv2 ground truth stays bit-identical, tests/unit/test_signals_groundtruth.py);
here each fast path is compared with the reference it stands in for, on the ground-truth documents (real text with
RPv2's edge cases: CR/LF mixes, NBSP, U+2028, mixed scripts, lone characters of every width) and on generated text:

* the precomputed Unicode tables (signals/unicode_tables_data.py) equal the tables built from this process's
  ``str`` predicates and ``regex`` classes, and a data file made for another Unicode version is not used;
* the C kernel's WordPunct tokens, vocabulary ids, per-token counts (stop words, ``str.isupper``, ASCII letters),
  CPython str hashes and DSIR gram counts equal the Python/numpy paths (and nltk's regex, CPython's own hash);
* Cephes ``lgam`` (which spares importing scipy.special) equals ``scipy.special.gammaln`` bit for bit;
* the pandas-free MinHash Parquet table equals ``pa.Table.from_pydict``'s, down to the file bytes.
"""

from __future__ import annotations

import json
import re
import sys
from functools import lru_cache

import numpy as np
import pytest
from conftest import shared_path
from hypothesis import given, settings
from hypothesis import strategies as st

from signals import _signals_kernel, unicode_tables
from signals.cpython_hash import CPythonHash
from signals.importance import cephes_lgam, poisson_pmf
from signals.natural_language import _count_upper, count_with_ascii_letter, count_with_ascii_letter_python
from signals.stable_hash import gram_counts_from_ids, rpv2_gram_counts, rpv2_hasher
from signals.text_normalization import (
    WORDPUNCT_PATTERN,
    build_table,
    wordpunct_tokenize,
    wordpunct_tokenize_python,
)
from signals.vocabulary import Vocabulary

# text that exercises every str storage width, surrogates, combining marks, engine differences
_ALPHABET = st.sampled_from(
    list("aZ09_ .,;!?#'\"\n\r\t\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\xad²½ÉéßΣσςÅ") + ["\u0300", "\u0301", "\u2028", "\u200b",
    "\u3000", "\uff11", "\u2167", "\U0001f595", "\U0001d400", "\ud800", "\udfff", "\u01c5", "\u0130", "\U000e0001"]
)
_TEXT = st.lists(_ALPHABET, max_size=60).map("".join)


@lru_cache(maxsize=1)
def groundtruth_texts() -> tuple[str, ...]:
    path = shared_path("groundtruth", "rpv2", "public", "docs.jsonl")
    with open(path, encoding="utf-8") as f:
        return tuple(json.loads(line)["raw_content"] for line in f if line.strip())


# ------------------------------------------------------------------------------------ Unicode tables
def _data_matches(name: str) -> bool:
    """Whether signals/unicode_tables_data.py was made with this process's databases for table ``name``."""
    from signals import unicode_tables_data as data

    versions = unicode_tables.current_versions()
    regex_ok = data.REGEX_VERSION == versions["regex_version"] or name not in ("wordpunct_classes",
                                                                                "engine_differences")
    return data.UNIDATA_VERSION == versions["unidata_version"] and regex_ok


@pytest.mark.parametrize("name", sorted(unicode_tables.TABLE_DTYPES))
def test_precomputed_table_equals_the_table_built_from_unicodedata(name: str) -> None:
    """Made with this process's Unicode databases, the shipped table is the built one; made with others
    (another Python or regex than the generator's), it is not used and char_table builds the table."""
    precomputed = unicode_tables.precomputed_table(name)
    if not _data_matches(name):
        assert precomputed is None
        return
    built = build_table(name)
    assert precomputed is not None and precomputed.dtype == built.dtype
    assert np.array_equal(precomputed, built)


def test_data_file_is_what_the_generator_writes_here() -> None:
    """Regenerating the data file with this process's databases gives the shipped file, when those are the
    databases it records (`python -m signals.unicode_tables` regenerates it)."""
    from signals import unicode_tables_data as data

    if not all(_data_matches(name) for name in unicode_tables.TABLE_DTYPES):
        assert data.UNIDATA_VERSION != unicode_tables.current_versions()["unidata_version"] or (
            data.REGEX_VERSION != unicode_tables.current_versions()["regex_version"])
        return
    assert data.NUM_CODE_POINTS == sys.maxunicode + 1
    assert unicode_tables.render_data_module() == unicode_tables.DATA_FILE.read_text(encoding="utf-8")


def test_tables_made_for_another_unicode_version_are_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    from signals import unicode_tables_data as data

    monkeypatch.setattr(data, "UNIDATA_VERSION", "0.0.0")
    assert unicode_tables.precomputed_table("isupper") is None
    assert unicode_tables.precomputed_table("wordpunct_classes") is None


def test_word_class_tables_made_with_another_regex_are_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    from signals import unicode_tables_data as data

    monkeypatch.setattr(data, "REGEX_VERSION", "1900.1.1")
    assert unicode_tables.precomputed_table("wordpunct_classes") is None
    assert unicode_tables.precomputed_table("engine_differences") is None
    # str predicates do not depend on regex: still used when Python's Unicode version matches
    assert (unicode_tables.precomputed_table("isnumeric") is not None) == _data_matches("isnumeric")


def test_char_table_falls_back_to_building_when_the_data_file_is_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    from signals import text_normalization
    from signals import unicode_tables_data as data

    monkeypatch.setattr(data, "UNIDATA_VERSION", "0.0.0")
    monkeypatch.setattr(text_normalization, "_TABLES", {})
    assert np.array_equal(text_normalization.char_table("isspace"), build_table("isspace"))


@given(st.lists(st.integers(0, 2), min_size=1, max_size=200))
@settings(max_examples=100, deadline=None)
def test_runs_round_trip(values: list[int]) -> None:
    table = np.asarray(values, dtype=np.uint8)
    starts, run_values = unicode_tables.encode_runs(table)
    assert np.array_equal(unicode_tables.decode_runs(starts, run_values, np.uint8, size=len(table)), table)


# ----------------------------------------------------------------------------------- tokens and ids
def test_native_wordpunct_equals_python_path_and_nltk_regex_on_groundtruth() -> None:
    for text in groundtruth_texts():
        tokens = wordpunct_tokenize(text)
        assert tokens == wordpunct_tokenize_python(text) == WORDPUNCT_PATTERN.findall(text)


@given(_TEXT)
@settings(max_examples=300, deadline=None)
def test_native_wordpunct_equals_nltk_regex(text: str) -> None:
    assert wordpunct_tokenize(text) == wordpunct_tokenize_python(text) == WORDPUNCT_PATTERN.findall(text)


def test_native_vocabulary_ids_equal_python_ids() -> None:
    native, python = Vocabulary(), Vocabulary()
    for text in groundtruth_texts():
        words = tuple(wordpunct_tokenize(text))
        assert np.array_equal(native.ids(words), python.ids_python(words))
    assert native.words == python.words
    assert native._ids == python._ids


@given(st.lists(_TEXT, max_size=40))
@settings(max_examples=200, deadline=None)
def test_token_counts_equal_python(tokens: list[str]) -> None:
    words = tuple(tokens)
    stop = frozenset(words[::3])
    assert _signals_kernel.count_tokens(words, 0, stop) == sum(map(stop.__contains__, words))
    assert _count_upper(words) == sum(map(str.isupper, words))
    # RPv2's definition (ALPH_REGEX search per token); the Python path assumes tokens without spaces, as
    # WordPunct tokens are
    assert count_with_ascii_letter(words) == sum(re.search("[a-zA-Z]", w) is not None for w in words)
    spaceless = tuple(w for w in words if " " not in w)
    assert count_with_ascii_letter(spaceless) == count_with_ascii_letter_python(spaceless)


def test_token_counts_equal_python_on_groundtruth_words() -> None:
    for text in groundtruth_texts():
        words = tuple(wordpunct_tokenize(text))
        assert _count_upper(words) == sum(map(str.isupper, words))
        assert count_with_ascii_letter(words) == count_with_ascii_letter_python(words)


# ------------------------------------------------------------------------------------------- DSIR
@given(st.lists(_TEXT, max_size=30))
@settings(max_examples=200, deadline=None)
def test_native_siphash_equals_numpy_path_and_scalar_reference(words: list[str]) -> None:
    hasher = CPythonHash(42, algorithm="siphash13")
    native = hasher.hash_strs_uncached(words)
    assert native.tolist() == hasher.hash_strs_uncached_numpy(words).tolist()
    assert native.tolist() == [hasher.hash_str(w) for w in words]


def test_native_siphash_equals_this_interpreters_hash() -> None:
    """With the running interpreter's own secret the kernel reproduces built-in ``hash()``."""
    import ctypes

    if sys.hash_info.algorithm != "siphash13":
        pytest.fail(f"this test expects CPython's siphash13, not {sys.hash_info.algorithm}")
    secret = ctypes.c_uint64 * 2
    k0, k1 = secret.in_dll(ctypes.pythonapi, "_Py_HashSecret")
    words = [w for text in groundtruth_texts()[:40] for w in wordpunct_tokenize(text)] + ["", "é", "\U0001f595"]
    got = np.frombuffer(_signals_kernel.siphash_strs(words, k0, k1, 1, 3), dtype=np.int64).tolist()
    assert got == [hash(w) for w in words]


@pytest.mark.parametrize("mode", ["rpv2", "stable"])
def test_native_gram_counts_equal_numpy_gram_counts(mode: str) -> None:
    vocab = Vocabulary()
    for text in groundtruth_texts():
        ids = vocab.ids_python(tuple(wordpunct_tokenize(text)))
        native = gram_counts_from_ids(ids, vocab, 10000, mode)
        numpy_path = gram_counts_from_ids(ids, vocab, 10000, mode, native=False)
        assert np.array_equal(native, numpy_path)


def test_rpv2_gram_counts_from_words_equal_counts_through_the_vocabulary() -> None:
    vocab = Vocabulary()
    for text in groundtruth_texts():
        words = tuple(wordpunct_tokenize(text))
        ids = vocab.ids_python(words)
        assert np.array_equal(rpv2_gram_counts(words, 10000), gram_counts_from_ids(ids, vocab, 10000, "rpv2", False))


def test_rpv2_gram_counts_match_hashing_each_gram() -> None:
    """Against the definition: abs(hash(w)) % buckets per unigram, abs(hash((a, b))) % buckets per bigram."""
    hasher = rpv2_hasher()
    words = tuple(wordpunct_tokenize(groundtruth_texts()[3]))
    expected = np.zeros(997, dtype=np.float64)
    for w in words:
        expected[abs(hasher.hash_str(w)) % 997] += 1
    for a, b in zip(words, words[1:], strict=False):
        expected[abs(hasher.hash_pair(a, b)) % 997] += 1
    assert np.array_equal(rpv2_gram_counts(words, 997), expected)


def test_cephes_lgam_equals_scipy_gammaln() -> None:
    from scipy import special

    xs = np.concatenate([np.arange(13, 200_000, dtype=np.float64),
                         np.unique(np.random.default_rng(7).integers(200_000, 10**12, 20_000)).astype(np.float64)])
    ours = np.array([cephes_lgam(float(x)) for x in xs])
    assert np.array_equal(ours, special.gammaln(xs))


def test_poisson_pmf_equals_scipys_formula() -> None:
    from scipy import special

    for mu in (np.array(38.02214022140221), np.array(118.16398713826366), np.array(1507.7297297297298)):
        for k in range(0, 6000):
            expected = float(np.exp(special.xlogy(float(k), mu) - special.gammaln(float(k) + 1.0) - mu))
            assert poisson_pmf(k, mu) == expected


# ---------------------------------------------------------------------------------------- MinHash
def test_minhash_parquet_table_from_buffers_equals_from_pydict(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dedup.minhash import RPv2MinHash, _table_from_buffers, minhash_parquet_schema
    from signals.document import Document

    minhash = RPv2MinHash()
    rows = []
    for row, text in enumerate(groundtruth_texts()):
        bands = minhash.banded_signatures(Document(text).normalized_words)
        rows.append({"shard_id": "2023-06/0000/en_head.json.gz", "id": f"x/{row}", "id_int": row * 2**40, **bands})
    assert any(r["signature_sim1.0"] is None for r in rows)  # documents under 13 words: null lists
    schema = minhash_parquet_schema()
    columns = {name: [r.get(name) for r in rows] for name in schema.names}
    fast, reference = _table_from_buffers(columns, schema), pa.Table.from_pydict(columns, schema=schema)
    assert fast.equals(reference)
    pq.write_table(fast, tmp_path / "a.parquet", compression="snappy")
    pq.write_table(reference, tmp_path / "b.parquet", compression="snappy")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    empty = {name: [] for name in schema.names}
    assert _table_from_buffers(empty, schema).equals(pa.Table.from_pydict(empty, schema=schema))


# ---------------------------------------------------------------------------------- output records
_SCORES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, 1e-05, 0.12345678, 1e16, 123456789.0]), _TEXT,
)
_SPAN = st.one_of(
    st.tuples(st.integers(0, 10**6), st.integers(0, 10**6), _SCORES),
    st.lists(_SCORES, max_size=4), st.tuples(_SCORES),
)


@given(
    st.dictionaries(st.one_of(st.sampled_from(["rps_doc_word_count", "ccnet_bucket"]), _TEXT),
                    st.lists(_SPAN, max_size=6), max_size=6),
    st.one_of(_TEXT, st.none(), st.integers()),
)
@settings(max_examples=400, deadline=None)
def test_fast_record_json_equals_json_dumps(signals: dict, url: object) -> None:
    from pipeline.export.rpv2_records import dumps_signals_record, dumps_signals_record_json

    record = {"id": "2023-06/0000/en_head.json.gz/3", "id_int": 2**64 - 1,
              "metadata": {"cc_segment": None, "url": url, "language": "en"}, "quality_signals": signals}
    assert dumps_signals_record(record) == dumps_signals_record_json(record)


def test_fast_record_json_equals_json_dumps_on_groundtruth_records() -> None:
    from pipeline.export.rpv2_records import dumps_signals_record, dumps_signals_record_json, signals_record
    from signals.registry import QualitySignals

    computer = QualitySignals(shared_path("groundtruth", "rpv2", "artifacts"))
    path = shared_path("groundtruth", "rpv2", "public", "docs.jsonl")
    with open(path, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    for row, record in enumerate(records):
        out = signals_record(record, computer.compute(record), record["shard_id"], row, "2023-06")
        assert dumps_signals_record(out) == dumps_signals_record_json(out)


# ------------------------------------------------------------------------------------------ entropy
def _entropy_sum_python(counts: np.ndarray, total: int) -> float:
    """RPv2's sum(-x / total * log(x / total) for x in counts), left to right from 0, unrounded."""
    import math

    result = 0
    for x in counts.tolist():
        if x > 0:
            result = result + -x / total * math.log(x / total)
    return result


@given(st.lists(st.integers(0, 50), min_size=1, max_size=300))
@settings(max_examples=300, deadline=None)
def test_native_entropy_sum_equals_pythons_sum(counts: list[int]) -> None:
    array = np.asarray(counts, dtype=np.int64)
    total = int(array.sum()) or 1
    assert _signals_kernel.unigram_entropy(array, total) + 0 == _entropy_sum_python(array, total)


def test_native_unigram_entropy_equals_python_path_on_groundtruth() -> None:
    from signals.document import Document
    from signals.natural_language import unigram_entropy, unigram_entropy_python
    from signals.repetition import ngram_table

    for text in groundtruth_texts():
        doc = Document(text)
        if doc.num_normalized_words:
            table = ngram_table(doc)
            assert unigram_entropy(doc) == unigram_entropy_python(table)
            raw = _signals_kernel.unigram_entropy(np.ascontiguousarray(table.first_counts), table.num_words)
            assert raw + 0 == _entropy_sum_python(table.first_counts, table.num_words)


# -------------------------------------------------------------------------------------------- lines
_LINE_TEXT = st.lists(st.one_of(_ALPHABET, st.sampled_from(list(".!?”\u2022\u2013\u25aa- \n\n"))), max_size=80).map(
    "".join
)


def _line_edges_python(doc) -> tuple[list[float], list[float]]:
    from signals import lines

    return ([float(line.rstrip().endswith(lines._TERMINAL_PUNCTUATION)) for line in doc.raw_line_texts],
            [float(line.lstrip().startswith(lines._BULLETS)) for line in doc.raw_line_texts])


@given(_LINE_TEXT)
@settings(max_examples=400, deadline=None)
def test_native_line_edges_equal_strip_and_compare(text: str) -> None:
    from signals.document import Document
    from signals.lines import line_edges

    doc = Document(text)
    assert line_edges(doc) == _line_edges_python(doc)


def test_native_line_edges_equal_strip_and_compare_on_groundtruth() -> None:
    from signals.document import Document
    from signals.lines import line_edges

    for text in groundtruth_texts():
        doc = Document(text)
        assert line_edges(doc) == _line_edges_python(doc)


# ------------------------------------------------------------------------------ without the kernel
def test_all_signals_without_the_kernel_equal_rpv2_ground_truth(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without a C compiler gets the same 45 values: every module's kernel switched off."""
    from pipeline.export import rpv2_records
    from signals import (
        content,
        cpython_hash,
        document,
        importance,
        lines,
        natural_language,
        registry,
        repetition,
        stable_hash,
        text_normalization,
        vocabulary,
    )

    for module in (text_normalization, vocabulary, cpython_hash, stable_hash, content, natural_language, lines,
                   repetition):
        monkeypatch.setattr(module, "_signals_kernel", None)
    for module in (text_normalization, document):
        monkeypatch.setattr(module, "NATIVE_TOKENIZER", False)
    for module in (stable_hash, importance, registry):
        monkeypatch.setattr(module, "NATIVE_RPV2_COUNTS", False)
    monkeypatch.setattr(rpv2_records, "_signals_json", None)

    computer = registry.QualitySignals(shared_path("groundtruth", "rpv2", "artifacts"))
    public = shared_path("groundtruth", "rpv2", "public")
    with open(public / "docs.jsonl", encoding="utf-8") as docs, open(public / "expected.jsonl", encoding="utf-8") as exp:
        for doc_line, expected_line in zip(docs, exp, strict=True):
            record, expected = json.loads(doc_line), json.loads(expected_line)
            got = computer.compute(record)
            assert json.loads(rpv2_records.dumps_signals_record(got)) == expected["quality_signals"], record["id"]

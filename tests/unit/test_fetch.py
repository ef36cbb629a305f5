"""pipeline.io.fetch: models and artifacts by URI, fetched once per machine and checked by sha256.

Real files (the lid.176.ftz model, RedPajama-V2's artifacts dir) served by a local HTTP server on
127.0.0.1 (tests/http_mirror.py), with injected faults; no Beam.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import shutil

import pytest
from conftest import shared_path
from http_mirror import HTTPMirror

from pipeline.ccnet.buckets import load_cutoffs, write_cutoffs
from pipeline.ccnet.perplexity import model_language, model_languages, needed_model_files
from pipeline.io.fetch import (
    MANIFEST,
    ChecksumMismatch,
    ManifestError,
    NotFound,
    RemoteDir,
    fetch,
    fetch_tree,
    parse_manifest,
    read_manifest,
    remote_dir,
    remote_file,
    sha256_file,
    update_manifest,
    write_manifest,
)
from pipeline.io.remote import RetryPolicy
from pipeline.shard.annotators import needed_artifacts

FAST = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.002)
LID = "models/lid.176.ftz"


def _gets(server: HTTPMirror, relpath: str, status: int | None = None) -> list[dict]:
    return [r for r in server.requests if r["path"].lstrip("/") == relpath and (status is None or r["status"] == status)]


@pytest.fixture
def served(tmp_path):
    """A served root holding lid.176.ftz and a copy of the RPv2 artifacts dir with its SHA256SUMS."""
    root = tmp_path / "served"
    (root / "models").mkdir(parents=True)
    shutil.copy(shared_path("realdata", "models", "lid.176.ftz"), root / LID)
    shutil.copytree(shared_path("groundtruth", "rpv2", "artifacts"), root / "artifacts")
    write_manifest(root / "artifacts")
    with HTTPMirror(root) as server:
        yield root, server


def test_fetch_writes_the_verified_file_under_its_sha256_and_reuses_it(served, tmp_path):
    root, server = served
    digest = sha256_file(root / LID)
    path = fetch(server.url(LID), digest, tmp_path / "cache", FAST)
    assert path == tmp_path / "cache" / digest / "lid.176.ftz"
    assert path.read_bytes() == (root / LID).read_bytes()
    assert sorted(p.name for p in path.parent.iterdir()) == ["lid.176.ftz"]  # no temporary left
    assert fetch(server.url(LID), digest, tmp_path / "cache", FAST) == path
    assert len(_gets(server, LID)) == 1  # the second call found the cached file


def test_fetch_resumes_a_truncated_body_with_a_range_request(served, tmp_path):
    root, server = served
    server.inject(LID, "truncate", at=0.5)
    path = fetch(server.url(LID), sha256_file(root / LID), tmp_path / "cache", FAST)
    assert path.read_bytes() == (root / LID).read_bytes()
    assert [r["status"] for r in _gets(server, LID)] == [200, 206]


def test_wrong_bytes_fail_naming_the_uri_and_sha256_and_leave_nothing(served, tmp_path):
    root, server = served
    recorded = hashlib.sha256(b"another file").hexdigest()
    with pytest.raises(ChecksumMismatch, match=r"lid\.176\.ftz: sha256 [0-9a-f]{64} does not match the recorded"):
        fetch(server.url(LID), recorded, tmp_path / "cache", FAST)
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_a_missing_file_is_not_found_without_retrying(served, tmp_path):
    _, server = served
    with pytest.raises(NotFound, match=r"models/absent\.bin: not found"):
        fetch(server.url("models/absent.bin"), "0" * 64, tmp_path / "cache", FAST)
    assert len(_gets(server, "models/absent.bin")) == 1


def test_local_paths_and_file_uris_are_read_in_place(served, tmp_path):
    root, _ = served
    local = root / LID
    assert fetch(str(local), "not checked for local files", tmp_path / "cache") == local
    assert fetch(local.as_uri(), "", tmp_path / "cache") == local
    assert not (tmp_path / "cache").exists()
    with pytest.raises(NotFound, match="absent.bin: not found"):
        fetch(str(root / "absent.bin"), "", tmp_path / "cache")


def _fetch_in_child(url: str, digest: str, cache: str, queue) -> None:
    queue.put(str(fetch(url, digest, cache, FAST)))


def test_concurrent_worker_processes_share_one_download(served, tmp_path):
    root, server = served
    digest = sha256_file(root / LID)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [context.Process(target=_fetch_in_child, args=(server.url(LID), digest, str(tmp_path / "c"), queue))
                for _ in range(4)]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
    assert [child.exitcode for child in children] == [0, 0, 0, 0]
    assert {queue.get(timeout=5) for _ in children} == {str(tmp_path / "c" / digest / "lid.176.ftz")}
    assert len(_gets(server, LID)) == 1


# -- manifests -----------------------------------------------------------------------------------------


def test_write_manifest_lists_every_file_with_its_sha256_sum(tmp_path):
    artifacts = tmp_path / "artifacts"
    shutil.copytree(shared_path("groundtruth", "rpv2", "artifacts"), artifacts)
    (artifacts / "bad_words" / "en.txt.sha256").write_text("sidecar\n")  # metadata, not listed
    (artifacts / ".hidden").write_text("x")
    (artifacts / "dsir" / "en" / "x.npy.part").write_text("x")
    path = write_manifest(artifacts)
    assert path == artifacts / MANIFEST
    entries = parse_manifest(path.read_text(), str(path))
    expected = sorted(p.relative_to(artifacts).as_posix() for p in artifacts.rglob("*")
                      if p.is_file() and p.name not in (MANIFEST, ".hidden") and not p.name.endswith((".sha256", ".part")))
    assert sorted(entries) == expected
    assert "classifiers/en/palm.model.bin" in entries
    for name, digest in entries.items():
        assert digest == hashlib.sha256((artifacts / name).read_bytes()).hexdigest()
    # sha256sum's format: "<hex>  <path>", sorted
    first = path.read_text().splitlines()[0]
    assert first == f"{entries[expected[0]]}  {expected[0]}"


def test_update_manifest_keeps_other_entries_and_drops_removed_files(tmp_path):
    (tmp_path / "en.sp.model").write_bytes(b"en sp")
    (tmp_path / "de.sp.model").write_bytes(b"de sp")
    update_manifest(tmp_path, {"en.sp.model": sha256_file(tmp_path / "en.sp.model")})
    update_manifest(tmp_path, {"de.sp.model": sha256_file(tmp_path / "de.sp.model")})
    assert sorted(read_manifest(str(tmp_path))) == ["de.sp.model", "en.sp.model"]
    (tmp_path / "en.sp.model").unlink()
    update_manifest(tmp_path, {})
    assert read_manifest(str(tmp_path)) == {"de.sp.model": hashlib.sha256(b"de sp").hexdigest()}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc  en.sp.model\n", "not a sha256"),
        (f"{'a' * 64}en.sp.model\n", "line 1: expected '<sha256>  <path>'"),
        (f"{'a' * 64}  ../../etc/passwd\n", "not a relative path"),
        (f"{'a' * 64}  /etc/passwd\n", "not a relative path"),
    ],
)
def test_a_bad_manifest_line_is_a_clear_error(text, message):
    with pytest.raises(ManifestError, match=message):
        parse_manifest(text, "gs://bucket/lm/SHA256SUMS")


def test_binary_mode_lines_and_comments_are_read():
    digest = "b" * 64
    assert parse_manifest(f"# made by hand\n{digest} *en.arpa.bin\n\n", "x") == {"en.arpa.bin": digest}


# -- the launcher's plan -------------------------------------------------------------------------------


def test_remote_dir_reads_the_manifest_and_keeps_the_needed_files(served):
    root, server = served
    plan = remote_dir(server.url("artifacts/"), lambda manifest: needed_artifacts(manifest, ("en", "de")), FAST)
    assert plan.uri == server.url("artifacts")
    assert plan.files["bad_words/en.txt"] == sha256_file(root / "artifacts" / "bad_words" / "en.txt")
    assert "bad_urls/domain_to_category_id.json" in plan.files
    assert "classifiers/de/wikipedia.model.bin" in plan.files
    assert "dsir/en/books.en.10000.counts.npy" in plan.files
    assert not [name for name in plan.files if "/fr" in name or "/es" in name or name.startswith("stop_words/bg")]
    assert "bad_urls/category_index.json" not in plan.files  # no signal reads it


def test_a_directory_uri_without_manifest_is_refused_naming_the_fix(served):
    root, server = served
    (root / "artifacts" / MANIFEST).unlink()
    with pytest.raises(ManifestError, match=r"artifacts/SHA256SUMS: not found.*rpv2 models manifest"):
        remote_dir(server.url("artifacts"), retry=FAST)


def test_remote_file_takes_the_sidecar_or_hashes_the_file_once(served):
    root, server = served
    digest = sha256_file(root / LID)
    assert remote_file(server.url(LID), FAST).sha256 == digest  # no sidecar: streamed once
    assert len(_gets(server, LID)) == 1
    (root / (LID + ".sha256")).write_text(f"{digest}  lid.176.ftz\n")
    assert remote_file(server.url(LID), FAST).sha256 == digest
    assert len(_gets(server, LID)) == 1  # the sidecar was enough


# -- the workers' side ---------------------------------------------------------------------------------


def test_fetch_tree_mirrors_the_layout_once(served, tmp_path):
    root, server = served
    plan = remote_dir(server.url("artifacts"), lambda manifest: needed_artifacts(manifest, ("en",)), FAST)
    tree = fetch_tree(plan, tmp_path / "cache", FAST)
    assert sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file()) == sorted([*plan.files,
                                                                                                     MANIFEST])
    for name in plan.files:
        assert (tree / name).read_bytes() == (root / "artifacts" / name).read_bytes()
    requests = len(server.requests)
    assert fetch_tree(plan, tmp_path / "cache", FAST) == tree
    assert len(server.requests) == requests


def test_fetch_tree_names_the_file_that_fails(served, tmp_path):
    root, server = served
    plan = remote_dir(server.url("artifacts"), lambda manifest: needed_artifacts(manifest, ("en",)), FAST)
    (root / "artifacts" / "stop_words" / "en.json").write_text('["changed"]')
    with pytest.raises(ChecksumMismatch, match=r"stop_words/en\.json: sha256") as failure:
        fetch_tree(plan, tmp_path / "cache", FAST)
    assert failure.value.relpath == "stop_words/en.json"
    assert not (tmp_path / "cache" / "trees").exists() or not any((tmp_path / "cache" / "trees").iterdir())


def test_fetch_tree_refuses_paths_outside_the_directory(tmp_path):
    with pytest.raises(ManifestError, match="not a relative path"):
        fetch_tree(RemoteDir("http://127.0.0.1:9/x", {"../escape": "a" * 64}), tmp_path)


def test_model_files_a_run_needs_are_the_kept_languages_pairs():
    manifest = {name: "a" * 64 for name in ("en.sp.model", "en.arpa.bin", "de.sp.model", "de.arpa",
                                              "fr.sp.model", "README", "nl.arpa.bin")}
    assert model_languages(manifest) == ["de", "en"]
    assert sorted(needed_model_files(manifest, ("en", "fr"))) == ["en.arpa.bin", "en.sp.model"]
    assert sorted(needed_model_files(manifest, None)) == ["de.arpa", "de.sp.model", "en.arpa.bin", "en.sp.model"]
    assert model_language("de.arpa.bin") == "de" and model_language("README") is None


def test_cutoffs_are_read_from_any_uri(served, tmp_path):
    root, server = served
    write_cutoffs(root / "cutoffs.yaml", {"en": (120.5, 300.0), "de": (150.0, 400.0)})
    assert load_cutoffs(server.url("cutoffs.yaml")) == {"en": (120.5, 300.0), "de": (150.0, 400.0)}
    assert load_cutoffs((root / "cutoffs.yaml").as_uri()) == load_cutoffs(root / "cutoffs.yaml")
    (root / "cutoff.csv").write_text("percentile,en,de\n30,100,110\n60,200,220\n")  # cc_net's cutoff.csv
    assert load_cutoffs(server.url("cutoff.csv")) == {"en": (100.0, 200.0), "de": (110.0, 220.0)}


def test_a_model_that_does_not_load_names_its_language_and_origin(tmp_path):
    from pipeline.ccnet.perplexity import LanguageModels, ModelLoadError

    (tmp_path / "en.sp.model").write_bytes(b"not a sentencepiece model")
    (tmp_path / "en.arpa.bin").write_bytes(b"not a kenlm model")
    models = LanguageModels(tmp_path, origin="gs://bucket/lm/")
    with pytest.raises(ModelLoadError, match=r"language 'en': model gs://bucket/lm/en\.sp\.model cannot be used: "):
        _ = models.get("en").sp

"""Word and domain lists for the content signals, read from an RPv2-layout artifacts directory.

Layout (RPv2's ``artifacts/`` as built by app/src/artifacts/update_resources.py, plus stop words):

* ``bad_words/{lang}.txt``: the LDNOOBW list, one entry per line (RPv2 ``load_bad_words`` strips each
  line and keeps them in a set; multi-word entries are matched as word n-grams).
* ``bad_urls/domain_to_category_id.json``: ``{domain: category_id}`` from the UT1 blacklist
  (``category_index.json`` maps ids to category tuples; only the id is a signal value).
* ``stop_words/{lang}.json``: a JSON list of stop words (the 6/stopwords-json lists that RPv2 hard-codes
  in core/quality_signals/utils/stop_words.py).

A list that is not there for a language is ``None``: the signal that needs it is null for that
document, and ``missing`` counts how many documents asked for it (never a KeyError, unlike RPv2's
``stop_words[lang]``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from pathlib import Path

log = logging.getLogger(__name__)


class BadWords:
    """An LDNOOBW list prepared for counting word n-gram matches as RPv2's RPS_Doc_LDNOOBW_Words.

    RPv2 gives every entry the gram size ``1 + entry.count(" ")`` and counts, for each size n, the
    normalized word n-grams whose space-joined text is in the list. We keep the same rule and only
    join the n-grams that start with a word some n-word entry starts with, which finds the same
    matches (an n-gram joined with spaces equals an entry only if its first word is the entry's text
    up to the first space).
    """

    __slots__ = ("entries", "unigrams", "multi", "first_words", "starts")

    def __init__(self, entries: set[str]) -> None:
        self.entries = frozenset(entries)
        self.unigrams = frozenset(e for e in self.entries if " " not in e)
        multi: dict[int, set[str]] = {}
        for entry in self.entries:
            n = 1 + entry.count(" ")
            if n > 1:
                multi.setdefault(n, set()).add(entry.split(" ", 1)[0])
        # n -> first words of the n-word entries
        self.multi: dict[int, frozenset[str]] = {n: frozenset(v) for n, v in sorted(multi.items())}
        self.first_words: frozenset[str] = frozenset().union(*self.multi.values())
        # every word a match can start with: one set intersection finds all candidates of a document
        self.starts: frozenset[str] = self.unigrams | self.first_words

    def count(self, words: tuple[str, ...]) -> int:
        """Number of word n-grams of ``words`` (all n of the list's entries) that are list entries."""
        num = sum(map(self.unigrams.__contains__, words))
        present = self.first_words.intersection(words)
        if not present:
            return num
        entries = self.entries
        num_words = len(words)
        starts = [i for i, w in enumerate(words) if w in present]
        for n, first_words in self.multi.items():
            for i in starts:
                if i + n <= num_words and words[i] in first_words and " ".join(words[i : i + n]) in entries:
                    num += 1
        return num


def _read_bad_words(path: Path) -> BadWords:
    with open(path, encoding="utf-8") as f:
        return BadWords({line.strip() for line in f})


def _read_stop_words(path: Path) -> frozenset[str]:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if isinstance(data, dict):  # tolerate {"words": [...]} style files
        data = next(iter(data.values()), [])
    return frozenset(str(w) for w in data)


def _read_ut1(path: Path) -> dict[str, int]:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return {str(k): int(v) for k, v in data.items()}


class WordLists:
    """Per-language lists from one artifacts directory, each loaded once on first use.

    Thread-safe for the lazy loads (a Beam worker may share one instance between threads).
    """

    def __init__(self, artifacts_dir: str | Path | None) -> None:
        self.artifacts_dir = Path(artifacts_dir) if artifacts_dir is not None else None
        self.missing: Counter[str] = Counter()
        self._bad_words: dict[str, BadWords | None] = {}
        self._stop_words: dict[str, frozenset[str] | None] = {}
        self._ut1: dict[str, int] | None = None
        self._ut1_loaded = False
        self._lock = threading.Lock()

    def _report_missing(self, message: str, *args: object) -> None:
        """A missing artifact is a warning when an artifacts dir was given; without one (the signals that
        need no artifact only) it is expected, so it is said once, at info level."""
        if self.artifacts_dir is not None:
            log.warning(message, *args)
        elif not getattr(self, "_said_no_dir", False):
            self._said_no_dir = True
            log.info("no artifacts dir: LDNOOBW, stop-word and UT1 signals are null (counted per document)")

    def _path(self, *parts: str) -> Path | None:
        if self.artifacts_dir is None:
            return None
        path = self.artifacts_dir.joinpath(*parts)
        return path if path.is_file() else None

    def bad_words(self, lang: str | None) -> BadWords | None:
        """The LDNOOBW list for ``lang`` (``bad_words/{lang}.txt``) or None when it is not there."""
        key = lang or ""
        try:
            value = self._bad_words[key]
        except KeyError:
            with self._lock:
                path = self._path("bad_words", f"{key}.txt") if key else None
                value = _read_bad_words(path) if path else None
                if value is None:
                    self._report_missing("no LDNOOBW list for language %r in %s", lang, self.artifacts_dir)
                self._bad_words[key] = value
        if value is None:
            self.missing[f"bad_words/{key}"] += 1
        return value

    def stop_words(self, lang: str | None) -> frozenset[str] | None:
        """The stop word set for ``lang`` (``stop_words/{lang}.json``) or None when it is not there."""
        key = lang or ""
        try:
            value = self._stop_words[key]
        except KeyError:
            with self._lock:
                path = self._path("stop_words", f"{key}.json") if key else None
                value = _read_stop_words(path) if path else None
                if value is None:
                    self._report_missing("no stop word list for language %r in %s", lang, self.artifacts_dir)
                self._stop_words[key] = value
        if value is None:
            self.missing[f"stop_words/{key}"] += 1
        return value

    def ut1_domains(self) -> dict[str, int] | None:
        """``bad_urls/domain_to_category_id.json`` or None when it is not there."""
        if not self._ut1_loaded:
            with self._lock:
                path = self._path("bad_urls", "domain_to_category_id.json")
                self._ut1 = _read_ut1(path) if path else None
                if self._ut1 is None:
                    self._report_missing("no UT1 domain index in %s", self.artifacts_dir)
                self._ut1_loaded = True
        if self._ut1 is None:
            self.missing["bad_urls/domain_to_category_id.json"] += 1
        return self._ut1

"""The benchmark corpus: N distinct CCNet-format documents composed from the real text in ../shared.

Every benchmark that needs "documents as a crawl gives them" reads this one corpus, so their figures are
on the same text and none of them is flattered by repeating a few hundred documents (warm caches, a
word table that stops growing). The text is all real; only its arrangement into pages is composed:

* sentences: ``realdata/groundtruth/langid/lingua_sentences/{en,de,fr,es,it,...}.txt`` (Leipzig web text);
* English Wikipedia paragraphs and section headings: ``realdata/corpora/wikitext-2_{test,valid}.txt``
  (detokenized, sentences with ``<unk>`` dropped);
* book text: ``realdata/corpora/botchan_en.txt`` (hard-wrapped lines or re-flowed paragraphs);
* the 20 real CCNet documents (``realdata/groundtruth/ccnet_rpv1``) and the 262 RPv2 ground-truth documents
  (``groundtruth/rpv2/public/docs.jsonl``): their lines are a pool of real web lines (menus, footers, lists,
  edge cases such as bullets, ellipses, code, mixed scripts) mixed into the pages.

A page is one of: a news/blog page (title, paragraphs of 1-6 sentences, header/footer lines, sometimes a
bullet list), a forum/list page (one sentence per line), an English Wikipedia article (several sections), a
book excerpt, a "web mix" built around real CCNet/ground-truth lines, or a short page (a few lines). Lengths
follow from the kind and its random sizes (a long tail, as crawls have). Languages: en about half, de, fr,
es, it the rest (the languages RPv2's artifacts cover), with a few pages carrying foreign sentences.

Document ``i`` is made by its own ``random.Random((seed, i))``, so the first 2,000 documents of a 20,000-doc
corpus are the 2,000-doc corpus (the linearity check compares like with like). No two documents have the
same ``raw_content`` (a collision is re-drawn). CCNet metadata is synthetic but consistent: ``length`` and
``nlines`` of the text, ``digest`` = sha1 base32 of the text, ``original_*`` >= the kept values, a
``perplexity`` inside the bucket's range of ``models/ccnet/cutoff.csv``. No model is run.

    python benchmarks/corpus.py --docs 20000 --out /tmp/rpv2-bench      # writes docs-20000-seed0.jsonl.gz
"""

from __future__ import annotations

import argparse
import base64
import csv
import gzip
import hashlib
import json
import os
import random
import re
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RPV2_SHARED", REPO.parent / "shared"))
LANGUAGES = ("en", "de", "fr", "es", "it")
LANGUAGE_WEIGHTS = (50, 14, 13, 12, 11)
FOREIGN = ("nl", "pt", "pl", "ru", "sv", "tr", "cs", "ja")  # sentences that show up inside other pages
TLDS = {"en": (".com", ".org", ".net", ".co.uk", ".info"), "de": (".de", ".at", ".ch", ".com"),
        "fr": (".fr", ".be", ".ca", ".com"), "es": (".es", ".com.mx", ".com.ar", ".com"),
        "it": (".it", ".com", ".net")}
# header/footer lines in the style of real pages (CCNet keeps what was not duplicated within its shard)
BOILERPLATE = {
    "en": ("Home | News | Sport | Culture | Contact", "Copyright {year} {site}. All rights reserved.",
           "Subscribe to our newsletter", "Privacy Policy - Terms of Use - Cookie Settings", "Back to top",
           "Share this: Facebook Twitter LinkedIn Email", "Posted by {name} on {date}", "Read more...",
           "Leave a Reply Cancel reply", "Related posts:", "Tags: {w1}, {w2}, {w3}", "{n} comments"),
    "de": ("Startseite | Aktuelles | Kontakt | Impressum", "Copyright {year} {site}. Alle Rechte vorbehalten.",
           "Newsletter abonnieren", "Datenschutz - AGB - Cookie-Einstellungen", "Nach oben",
           "Teilen: Facebook Twitter WhatsApp E-Mail", "Veröffentlicht von {name} am {date}", "Weiterlesen...",
           "Schreibe einen Kommentar", "Ähnliche Beiträge:", "Schlagwörter: {w1}, {w2}, {w3}", "{n} Kommentare"),
    "fr": ("Accueil | Actualités | Contact | Mentions légales", "Copyright {year} {site}. Tous droits réservés.",
           "Inscrivez-vous à notre newsletter", "Politique de confidentialité - CGU - Cookies", "Haut de page",
           "Partager : Facebook Twitter LinkedIn E-mail", "Publié par {name} le {date}", "Lire la suite...",
           "Laisser un commentaire", "Articles similaires :", "Mots-clés : {w1}, {w2}, {w3}", "{n} commentaires"),
    "es": ("Inicio | Noticias | Contacto | Aviso legal", "Copyright {year} {site}. Todos los derechos reservados.",
           "Suscríbete a nuestro boletín", "Política de privacidad - Términos de uso - Cookies", "Volver arriba",
           "Compartir: Facebook Twitter WhatsApp Email", "Publicado por {name} el {date}", "Leer más...",
           "Deja un comentario", "Entradas relacionadas:", "Etiquetas: {w1}, {w2}, {w3}", "{n} comentarios"),
    "it": ("Home | Notizie | Contatti | Note legali", "Copyright {year} {site}. Tutti i diritti riservati.",
           "Iscriviti alla newsletter", "Privacy Policy - Termini di utilizzo - Cookie", "Torna su",
           "Condividi: Facebook Twitter WhatsApp Email", "Pubblicato da {name} il {date}", "Leggi tutto...",
           "Lascia un commento", "Articoli correlati:", "Tag: {w1}, {w2}, {w3}", "{n} commenti"),
}
BULLETS = ("• ", "- ", "* ", "· ", "► ", "▪ ", "1. ", "")
KINDS = ("news", "news", "news", "list", "wiki", "book", "webmix", "webmix", "short")


# ------------------------------------------------------------------------------------------ sources
def _read(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        raise SystemExit(f"corpus.py: error: {path} is missing (set RPV2_SHARED to the shared/ directory)")
    return path


@cache
def sentences(language: str) -> tuple[str, ...]:
    path = _read("realdata", "groundtruth", "langid", "lingua_sentences", f"{language}.txt")
    return tuple(s for s in (line.strip() for line in path.read_text(encoding="utf-8").splitlines()) if s)


_DETOKENIZE = ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."), (" ,", ","), (" .", "."), (" ;", ";"),
               (" :", ":"), (" 's", "'s"), ("( ", "("), (" )", ")"), (" n't", "n't"), (" ?", "?"), (" !", "!"))


def _detokenize(text: str) -> str:
    for old, new in _DETOKENIZE:
        text = text.replace(old, new)
    return re.sub(r'" ([^"]*?) "', r'"\1"', text)


@cache
def wiki_articles() -> tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...]:
    """(title, ((heading, paragraphs), ...)) for every article of wikitext-2 test + valid."""
    articles: list[tuple[str, list[tuple[str, list[str]]]]] = []
    for name in ("wikitext-2_test.txt", "wikitext-2_valid.txt"):
        for raw in _read("realdata", "corpora", name).read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line:
                continue
            heading = re.fullmatch(r"((?:= )+)(.*?)(?: =)+", line)  # "= Title =", "= = Section = =", ...
            if heading and heading.group(1) == "= ":
                articles.append((_detokenize(heading.group(2)).replace("<unk>", "").strip(), [("", [])]))
            elif heading and articles:
                articles[-1][1].append((_detokenize(heading.group(2)).replace("<unk>", "").strip(), []))
            elif articles:
                kept = [s for s in re.split(r"(?<= \.) ", line) if "<unk>" not in s]
                if kept:
                    articles[-1][1][-1][1].append(_detokenize(" ".join(kept)))
    return tuple((title, tuple((h, tuple(p)) for h, p in sections if p)) for title, sections in articles
                 if any(p for _, p in sections))


@cache
def book_lines() -> tuple[str, ...]:
    return tuple(_read("realdata", "corpora", "botchan_en.txt").read_text(encoding="utf-8").splitlines())


@cache
def web_documents() -> tuple[tuple[str, str], ...]:
    """(language, raw_content) of the 20 real CCNet documents and the 262 RPv2 ground-truth documents."""
    docs: list[tuple[str, str]] = []
    for path in sorted(_read("realdata", "groundtruth", "ccnet_rpv1").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").split("\n"):
            if not line.strip():
                continue
            record = json.loads(line)
            docs.append((record["metadata"]["language"], record["text"]))
    for line in _read("groundtruth", "rpv2", "public", "docs.jsonl").read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        record = json.loads(line)
        docs.append((record["language"], record["raw_content"]))
    return tuple(docs)


@cache
def web_lines(language: str) -> tuple[str, ...]:
    return tuple(line for lang, text in web_documents() if lang == language for line in text.split("\n")
                 if line.strip())


@cache
def perplexity_cutoffs() -> dict[str, tuple[float, float]]:
    """language -> (30th, 60th) percentile of CCNet's perplexity (head < p30 <= middle < p60 <= tail)."""
    with open(_read("realdata", "models", "ccnet", "cutoff.csv"), encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    by_pct = {int(row[0]): row for row in rows[1:]}
    return {lang: (float(by_pct[30][i]), float(by_pct[60][i])) for i, lang in enumerate(header) if i}


# ------------------------------------------------------------------------------------------ pages
def _words(rng: random.Random, language: str, count: int) -> list[str]:
    pool = sentences(language)
    words: list[str] = []
    while len(words) < count:
        words += [w.strip(".,;:!?\"'()") for w in rng.choice(pool).split() if len(w) > 3]
    return [w for w in words[:count] if w] or ["web"]


def _fill(template: str, rng: random.Random, language: str, site: str) -> str:
    w = _words(rng, language, 4)
    return template.format(
        year=rng.randint(2005, 2023), site=site, name=w[0].capitalize(), n=rng.randint(0, 250),
        date=f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.{rng.randint(2010, 2023)}",
        w1=w[1 % len(w)], w2=w[2 % len(w)], w3=w[3 % len(w)],
    )


def _paragraphs(rng: random.Random, language: str, count: int, max_sentences: int = 5) -> list[str]:
    pool = sentences(language)
    out = []
    for _ in range(count):
        start = rng.randrange(len(pool))
        size = rng.randint(1, max_sentences)
        if rng.random() < 0.5:  # consecutive sentences (the files are sorted: a "topic" by first letters)
            out.append(" ".join(pool[(start + k) % len(pool)] for k in range(size)))
        else:
            out.append(" ".join(rng.choice(pool) for _ in range(size)))
    if rng.random() < 0.08:  # a foreign sentence or quote inside the page
        out.insert(rng.randrange(len(out) + 1), rng.choice(sentences(rng.choice(FOREIGN))))
    return out


def _long_tail(rng: random.Random, low: int, median: int, high: int) -> int:
    return max(low, min(high, round(rng.lognormvariate(0, 0.8) * median)))


def _news(rng: random.Random, language: str, site: str) -> tuple[str, list[str]]:
    boiler = BOILERPLATE[language]
    title = rng.choice(sentences(language)).rstrip(".")
    body = _paragraphs(rng, language, _long_tail(rng, 2, 6, 60))
    if rng.random() < 0.3:
        bullet = rng.choice(BULLETS)
        at = rng.randrange(len(body) + 1)
        body[at:at] = [bullet + s for s in rng.sample(sentences(language), rng.randint(3, 8))]
    head = [_fill(t, rng, language, site) for t in rng.sample(boiler[:6], rng.randint(0, 3))]
    foot = [_fill(t, rng, language, site) for t in rng.sample(boiler[4:], rng.randint(0, 4))]
    return title, head + [title] + body + foot


def _list_page(rng: random.Random, language: str, site: str) -> tuple[str, list[str]]:
    pool = sentences(language)
    lines = [rng.choice(pool) for _ in range(_long_tail(rng, 3, 12, 150))]
    if rng.random() < 0.5:
        bullet = rng.choice(BULLETS)
        lines = [bullet + line for line in lines]
    return lines[0][:80], lines


def _wiki(rng: random.Random) -> tuple[str, list[str]]:
    articles = wiki_articles()
    title, sections = articles[rng.randrange(len(articles))]
    first = rng.randrange(len(sections))
    lines = [title]
    for heading, paragraphs in sections[first: first + _long_tail(rng, 1, 3, 12)]:
        if heading:
            lines.append(heading)
        take = rng.randint(1, len(paragraphs))
        lines += paragraphs[:take]
    return title, lines


def _book(rng: random.Random) -> tuple[str, list[str]]:
    lines = book_lines()
    size = _long_tail(rng, 8, 40, 600)
    start = rng.randrange(max(1, len(lines) - size))
    chunk = [line.strip() for line in lines[start: start + size]]
    if rng.random() < 0.5:  # re-flowed into paragraphs
        text = "\n".join(chunk)
        chunk = [" ".join(p.split()) for p in text.split("\n\n")]
    chunk = [line for line in chunk if line]
    return (chunk[0][:80] if chunk else "Botchan"), chunk or ["Botchan"]


def _webmix(rng: random.Random, language: str, site: str) -> tuple[str, list[str]]:
    real = web_lines(language) or web_lines("en")
    lines = [rng.choice(real) for _ in range(_long_tail(rng, 2, 8, 80))]
    body = _paragraphs(rng, language, rng.randint(1, 8))
    for paragraph in body:
        lines.insert(rng.randrange(len(lines) + 1), paragraph)
    return lines[0][:80], lines


def _short(rng: random.Random, language: str, site: str) -> tuple[str, list[str]]:
    boiler = BOILERPLATE[language]
    lines = [_fill(t, rng, language, site) for t in rng.sample(boiler, rng.randint(1, 3))]
    lines.insert(rng.randrange(len(lines) + 1), rng.choice(sentences(language)))
    return lines[0][:80], lines


def _site(rng: random.Random, language: str) -> str:
    w = _words(rng, language, 2)
    name = "-".join(re.sub(r"[^a-z0-9]", "", x.lower()) or "web" for x in w)
    return f"{rng.choice(('www.', '', '', 'blog.', 'news.'))}{name}{rng.choice(TLDS[language])}"


def _base32_sha1(text: str) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(text.encode("utf-8", "surrogatepass")).digest()).decode()


def make_document(seed: int, index: int, salt: int = 0) -> dict[str, Any]:
    """Document ``index`` of the corpus (a CCNet record), a function of (seed, index, salt) only."""
    rng = random.Random(f"{seed}/{index}/{salt}")
    language = rng.choices(LANGUAGES, LANGUAGE_WEIGHTS)[0]
    kind = rng.choice(KINDS)
    if kind in ("wiki", "book") and language != "en":
        kind = "news"
    site = _site(rng, language)
    if kind == "wiki":
        site = "en.wikipedia.org"
    if kind == "news":
        title, lines = _news(rng, language, site)
    elif kind == "list":
        title, lines = _list_page(rng, language, site)
    elif kind == "wiki":
        title, lines = _wiki(rng)
    elif kind == "book":
        title, lines = _book(rng)
    elif kind == "webmix":
        title, lines = _webmix(rng, language, site)
    else:
        title, lines = _short(rng, language, site)
    text = "\n".join(lines)
    nlines = text.count("\n") + 1
    original_nlines = nlines + rng.randint(0, 3 * nlines + 20)
    low, high = perplexity_cutoffs().get(language, (300.0, 600.0))
    bucket = rng.choices(("head", "middle", "tail"), (40, 35, 25))[0]
    perplexity = {"head": rng.uniform(low * 0.3, low), "middle": rng.uniform(low, high),
                  "tail": rng.uniform(high, high * 2.5)}[bucket]
    path = re.sub(r"[^a-z0-9]+", "-", title.lower())[:60].strip("-") or "page"
    segment = 1_675_000_000 + rng.randrange(1_000_000)
    return {
        "url": f"https://{site}/{path}-{index}" if kind != "wiki" else f"https://{site}/wiki/{path}",
        "date_download": f"2023-02-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z",
        "digest": _base32_sha1(text),
        "length": len(text),
        "nlines": nlines,
        "source_domain": site,
        "title": title,
        "raw_content": text,
        "cc_segment": f"crawl-data/CC-MAIN-2023-06/segments/{segment}.{rng.randint(10, 99)}/wet/"
                      f"CC-MAIN-2023020{rng.randint(1, 9)}-{rng.randrange(100000):05d}.warc.wet.gz",
        "original_nlines": original_nlines,
        "original_length": len(text.encode("utf-8")) + rng.randint(0, 8000),
        "line_ids": sorted(rng.sample(range(original_nlines), nlines)),
        "language": language,
        "language_score": round(rng.uniform(0.55, 1.0), 2),
        "perplexity": round(perplexity, 1),
        "bucket": bucket,
    }


def iter_documents(num_docs: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """The first ``num_docs`` documents of the corpus, no two with the same ``raw_content``."""
    seen: set[bytes] = set()
    for index in range(num_docs):
        salt = 0
        while True:
            record = make_document(seed, index, salt)
            key = hashlib.sha1(record["raw_content"].encode("utf-8", "surrogatepass")).digest()
            if key not in seen:
                seen.add(key)
                yield record
                break
            salt += 1


def corpus_path(out_dir: str | Path, num_docs: int, seed: int = 0) -> Path:
    return Path(out_dir) / f"docs-{num_docs}-seed{seed}.jsonl.gz"


def write_corpus(out_dir: str | Path, num_docs: int, seed: int = 0, force: bool = False) -> Path:
    """Write the corpus as gzip JSON lines (CCNet's document format) and return its path; an existing
    file of the same size and seed is reused (the content is a function of both)."""
    path = corpus_path(out_dir, num_docs, seed)
    if path.exists() and not force:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=6) as f:
        for record in iter_documents(num_docs, seed):
            f.write(json.dumps(record, ensure_ascii=False))
            f.write("\n")
    os.replace(tmp, path)
    return path


def read_corpus(path: str | Path, limit: int = -1) -> list[dict[str, Any]]:
    """The records of a written corpus file (the first ``limit`` when limit >= 0)."""
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            if 0 <= limit <= len(out):
                break
            out.append(json.loads(line))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=20000, help="number of distinct documents")
    parser.add_argument("--out", required=True, help="output directory (docs-<N>-seed<S>.jsonl.gz)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="rewrite an existing file")
    args = parser.parse_args(argv)
    if args.docs < 1:
        parser.error("--docs must be >= 1")
    path = write_corpus(args.out, args.docs, args.seed, force=args.force)
    records = read_corpus(path)
    chars = sum(len(r["raw_content"]) for r in records)
    langs: dict[str, int] = {}
    for r in records:
        langs[r["language"]] = langs.get(r["language"], 0) + 1
    lengths = sorted(len(r["raw_content"]) for r in records)
    print(f"{path}: {len(records)} distinct documents, {chars / 1e6:.1f} M chars "
          f"(mean {chars / len(records):.0f}, median {lengths[len(lengths) // 2]}, max {lengths[-1]}), "
          f"languages {dict(sorted(langs.items()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

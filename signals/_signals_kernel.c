/*
 * rpv2 signals kernel: RPv2's nine word-n-gram repetition signals in one C pass per document.
 *
 * Computes the same integers as signals/repetition.py's Python path (which reproduces RedPajama-V2's
 * app/src/core/quality_signals/repetitions.py, Base_RPS_Frac_Chars_In_Top_NGram and
 * Base_RPS_Frac_Chars_In_Dupe_NGrams), over a document's normalized words given as
 *
 *   word_ids  a contiguous buffer of 4- or 8-byte integers, equal ids = equal words (any numbering);
 *   words     the tuple (or list) of the words themselves, read only for their lengths in code points.
 *
 * and returns the numerators of the nine fractions, whose common denominator is the number of word
 * characters (the caller divides and rounds exactly as the Python path does):
 *
 *   top n   (n = 2, 3, 4): count * characters of the most frequent n-gram, the first to occur among
 *           those with the highest count (Counter.most_common(1)); 0 when no n-gram occurs twice.
 *           Overlapping occurrences are all counted, as RPv2 does.
 *   dupe n  (n = 5 .. 10): characters of the words covered by at least one occurrence of an n-gram
 *           that occurs more than once, each word counted once; 0 when there are fewer than n words.
 *
 * Repeated n-grams are found level by level, exactly (no hashing of word tuples, no collisions):
 * an n-gram can repeat only if the (n-1)-grams at its position and the next both repeat, so level n
 * keys each such position by (group of its (n-1)-gram, id of its n-th word) and groups the keys in an
 * open-addressing table. A group is named by the first position of its n-gram (a word by its id when
 * the ids are below the number of words, else by its first position). Once a level has no
 * repeats, no longer n-gram can repeat and the remaining levels are zero.
 *
 * first_positions(words) numbers the words by their first occurrence (the ids above) and counts them,
 * in one pass with a table keyed by the str hash, instead of a Python dict.setdefault per word.
 *
 * siphash_strs, gram_counts and cpython_gram_counts compute the DSIR features (signals/importance.py):
 * CPython's str hash under a given secret, and the per-bucket counts of a document's unigrams and bigrams
 * (from vocabulary ids, or hashing every word). vocabulary_ids is signals/vocabulary.py's word -> id
 * lookup; count_tokens counts stop words, str.isupper() and ASCII-letter tokens; unigram_entropy is RPv2's
 * entropy sum; line_edges the per-line terminal-punctuation and bullet tests; signals_json writes the
 * quality_signals object of an output record exactly as json.dumps would.
 *
 * Every function has a Python/numpy twin that gives the same values (tests/unit/test_signals_kernel.py,
 * tests/unit/test_signals_speed_paths.py); the module is optional (setup.py builds it with optional=True).
 *
 * wordpunct cuts nltk's WordPunct tokens out of a text given a per-code-point class table.
 *
 * line_stats and upper_per_line count, per line, what signals/lines.py's line signals divide (words,
 * normalized length, numeric and upper-case characters) with the predicates str itself uses.
 *
 * repetition releases the GIL while counting, so Beam's threaded workers can run documents in parallel;
 * the functions that read or build Python objects hold it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#define MAX_NGRAM 10

typedef struct {
    uint64_t key;
    int64_t first; /* first position with this key; -1 = empty slot */
    int64_t count;
} slot_t;

static inline uint64_t mix64(uint64_t x) {
    /* splitmix64 finalizer: spreads (group * n + word) keys over the table */
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    x ^= x >> 31;
    return x;
}

/* Insert (or count) `key` first seen at `pos`; returns the slot. `mask` = table size - 1. */
static inline slot_t *table_add(slot_t *table, uint64_t mask, uint64_t key, int64_t pos) {
    uint64_t i = mix64(key) & mask;
    for (;;) {
        slot_t *s = &table[i];
        if (s->first < 0) {
            s->key = key;
            s->first = pos;
            s->count = 1;
            return s;
        }
        if (s->key == key) {
            s->count++;
            return s;
        }
        i = (i + 1) & mask;
    }
}

static inline slot_t *table_find(slot_t *table, uint64_t mask, uint64_t key) {
    uint64_t i = mix64(key) & mask;
    for (;;) {
        slot_t *s = &table[i];
        if (s->key == key && s->first >= 0) return s;
        i = (i + 1) & mask;
    }
}

static uint64_t table_size_for(Py_ssize_t items) {
    uint64_t size = 16;
    while (size < (uint64_t)items * 2) size <<= 1;
    return size;
}

/*
 * The core, free of Python objects. ids[i] = key of word i, lengths[i] = its length, n words.
 * out[0..2] = top 2..4 numerators, out[3..8] = dupe 5..10 numerators. Returns 0, or -1 when out of
 * memory.
 */
static int repetition_numerators(const uint64_t *ids, const int64_t *lengths, Py_ssize_t n, int64_t out[9]) {
    memset(out, 0, 9 * sizeof(int64_t));
    if (n < 2) return 0; /* no n-gram (n >= 2) can occur twice */
    int rc = -1;
    uint64_t tsize = table_size_for(n);
    slot_t *table = malloc(tsize * sizeof(slot_t));
    /* the current level's repeated n-grams: start positions (ascending), group and count per position */
    int64_t *pos = malloc(n * sizeof(int64_t));
    int64_t *grp = malloc(n * sizeof(int64_t));
    int64_t *cnt = malloc(n * sizeof(int64_t));
    /* candidates of the next level */
    int64_t *cpos = malloc(n * sizeof(int64_t));
    uint64_t *ckey = malloc(n * sizeof(uint64_t));
    /* group of the repeated (n-1)-gram at each position, -1 where it does not repeat */
    int64_t *group_at = malloc((n + 1) * sizeof(int64_t));
    /* each word's group: its id (dense ids) or the position of its first occurrence */
    int64_t *word_group = malloc(n * sizeof(int64_t));
    if (!table || !pos || !grp || !cnt || !cpos || !ckey || !group_at || !word_group) goto done;

    /* level 1: every word. A word's group is its id when all ids are below n (first_positions' ids
     * are), counted in an array; otherwise the position of its first occurrence, from a hash table. */
    int dense = 1;
    for (Py_ssize_t i = 0; i < n && dense; i++) dense = ids[i] < (uint64_t)n;
    Py_ssize_t m = 0;
    if (dense) {
        int64_t *count_of = cpos; /* free until level 2 */
        memset(count_of, 0, n * sizeof(int64_t));
        for (Py_ssize_t i = 0; i < n; i++) count_of[ids[i]]++;
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t c = count_of[ids[i]];
            word_group[i] = (int64_t)ids[i];
            if (c > 1) {
                pos[m] = i;
                grp[m] = (int64_t)ids[i];
                cnt[m] = c;
                m++;
            }
        }
    } else {
        uint64_t mask = tsize - 1;
        memset(table, 0xFF, tsize * sizeof(slot_t)); /* first = -1 everywhere */
        for (Py_ssize_t i = 0; i < n; i++) table_add(table, mask, ids[i], i);
        for (Py_ssize_t i = 0; i < n; i++) {
            slot_t *s = table_find(table, mask, ids[i]);
            word_group[i] = s->first;
            if (s->count > 1) {
                pos[m] = i;
                grp[m] = s->first;
                cnt[m] = s->count;
                m++;
            }
        }
    }
    for (Py_ssize_t i = 0; i <= n; i++) group_at[i] = -1;

    for (int level = 2; level <= MAX_NGRAM && m >= 2; level++) {
        /* candidates: positions where the (level-1)-grams at i and i + 1 both repeat, keyed by
         * (group of the (level-1)-gram, group of the level-th word): equal keys = equal n-grams */
        for (Py_ssize_t k = 0; k < m; k++) group_at[pos[k]] = grp[k];
        Py_ssize_t c = 0;
        for (Py_ssize_t k = 0; k < m; k++) {
            int64_t i = pos[k];
            if (group_at[i + 1] >= 0) {
                cpos[c] = i;
                ckey[c] = (uint64_t)grp[k] * (uint64_t)n + (uint64_t)word_group[i + level - 1];
                c++;
            }
        }
        for (Py_ssize_t k = 0; k < m; k++) group_at[pos[k]] = -1;
        m = 0;
        if (c >= 2) {
            /* the first table_size_for(c) slots of the level-1 table (no longer needed) */
            uint64_t lsize = table_size_for(c);
            uint64_t lmask = lsize - 1;
            memset(table, 0xFF, lsize * sizeof(slot_t));
            for (Py_ssize_t k = 0; k < c; k++) table_add(table, lmask, ckey[k], cpos[k]);
            for (Py_ssize_t k = 0; k < c; k++) {
                slot_t *s = table_find(table, lmask, ckey[k]);
                if (s->count > 1) {
                    pos[m] = cpos[k];
                    grp[m] = s->first;
                    cnt[m] = s->count;
                    m++;
                }
            }
        }
        if (m == 0) break;
        if (level <= 4) {
            /* the first position among those with the highest count */
            int64_t best = 0, first = 0;
            for (Py_ssize_t k = 0; k < m; k++) {
                if (cnt[k] > best) {
                    best = cnt[k];
                    first = pos[k];
                }
            }
            int64_t chars = 0;
            for (int j = 0; j < level; j++) chars += lengths[first + j];
            out[level - 2] = chars * best;
        } else {
            /* characters of the words covered by the repeated n-grams, each word once */
            int64_t chars = 0, covered_end = 0;
            for (Py_ssize_t k = 0; k < m; k++) {
                int64_t start = pos[k] > covered_end ? pos[k] : covered_end;
                int64_t end = pos[k] + level;
                for (int64_t j = start; j < end; j++) chars += lengths[j];
                if (end > covered_end) covered_end = end;
            }
            out[level - 2] = chars;
        }
    }
    rc = 0;
done:
    free(table);
    free(pos);
    free(grp);
    free(cnt);
    free(cpos);
    free(ckey);
    free(group_at);
    free(word_group);
    return rc;
}

PyDoc_STRVAR(repetition_doc,
             "repetition(word_ids, words) -> (top2, top3, top4, dupe5, ..., dupe10)\n\n"
             "Numerators of RPv2's nine repetition fractions for one document's normalized words:\n"
             "word_ids is a contiguous buffer of 4- or 8-byte integers (equal ids = equal words), words\n"
             "the tuple or list of the words (read for their lengths). Divide each by the number of\n"
             "word characters and round to 8 digits to get the signal (0.0 where it is 0).");

static PyObject *py_repetition(PyObject *self, PyObject *args) {
    PyObject *ids_obj, *words_obj;
    if (!PyArg_ParseTuple(args, "OO:repetition", &ids_obj, &words_obj)) return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(ids_obj, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    PyObject *seq = NULL, *result = NULL;
    uint64_t *ids = NULL;
    int64_t *lengths = NULL;
    if (view.itemsize != 4 && view.itemsize != 8) {
        PyErr_Format(PyExc_TypeError, "word_ids must hold 4- or 8-byte integers, not %zd-byte items", view.itemsize);
        goto done;
    }
    Py_ssize_t n = view.len / view.itemsize;
    seq = PySequence_Fast(words_obj, "words must be a sequence of str");
    if (!seq) goto done;
    if (PySequence_Fast_GET_SIZE(seq) != n) {
        PyErr_Format(PyExc_ValueError, "%zd word ids for %zd words", n, PySequence_Fast_GET_SIZE(seq));
        goto done;
    }
    ids = malloc((n ? n : 1) * sizeof(uint64_t));
    lengths = malloc((n ? n : 1) * sizeof(int64_t));
    if (!ids || !lengths) {
        PyErr_NoMemory();
        goto done;
    }
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyUnicode_Check(items[i])) {
            PyErr_Format(PyExc_TypeError, "words[%zd] is %.80s, not str", i, Py_TYPE(items[i])->tp_name);
            goto done;
        }
        lengths[i] = PyUnicode_GET_LENGTH(items[i]);
    }
    /* sign-extending or not keeps equal ids equal and different ids different */
    if (view.itemsize == 8) {
        memcpy(ids, view.buf, n * sizeof(uint64_t));
    } else {
        const uint32_t *src = view.buf;
        for (Py_ssize_t i = 0; i < n; i++) ids[i] = src[i];
    }
    int64_t out[9];
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = repetition_numerators(ids, lengths, n, out);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        PyErr_NoMemory();
        goto done;
    }
    result = Py_BuildValue("(LLLLLLLLL)", (long long)out[0], (long long)out[1], (long long)out[2],
                           (long long)out[3], (long long)out[4], (long long)out[5], (long long)out[6],
                           (long long)out[7], (long long)out[8]);
done:
    free(ids);
    free(lengths);
    Py_XDECREF(seq);
    PyBuffer_Release(&view);
    return result;
}

/* ------------------------------------------------------------------------------------------------ */
/* word ids: each word's id is the position of its first occurrence                                */
/* ------------------------------------------------------------------------------------------------ */

typedef struct {
    Py_hash_t hash;
    Py_ssize_t pos; /* -1 = empty */
} word_slot_t;

static inline int same_str(PyObject *a, PyObject *b) {
    if (a == b) return 1;
    Py_ssize_t len = PyUnicode_GET_LENGTH(a);
    if (len != PyUnicode_GET_LENGTH(b) || PyUnicode_KIND(a) != PyUnicode_KIND(b)) return 0;
    return memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), (size_t)len * PyUnicode_KIND(a)) == 0;
}

PyDoc_STRVAR(first_positions_doc,
             "first_positions(words) -> (word_ids, counts, first_position)\n\n"
             "For a tuple or list of str: word_ids, a bytearray of int64, the position of each word's first\n"
             "occurrence (what signals/repetition.py's NgramTable computes with dict.setdefault); counts,\n"
             "a bytearray of int64 indexed by first position, each word's count (0 elsewhere); and\n"
             "first_position, the dict word -> position of its first occurrence, in first-occurrence order.");

static PyObject *py_first_positions(PyObject *self, PyObject *words_obj) {
    PyObject *seq = PySequence_Fast(words_obj, "words must be a sequence of str");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    PyObject *ids_obj = PyByteArray_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(int64_t));
    PyObject *counts_obj = PyByteArray_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(int64_t));
    PyObject *first = NULL;
    PyObject *result = NULL;
    Py_ssize_t distinct = 0;
    uint64_t size = table_size_for(n);
    word_slot_t *table = malloc(size * sizeof(word_slot_t));
    if (!ids_obj || !counts_obj) goto done;
    if (!table) {
        PyErr_NoMemory();
        goto done;
    }
    int64_t *ids = (int64_t *)PyByteArray_AS_STRING(ids_obj);
    int64_t *counts = (int64_t *)PyByteArray_AS_STRING(counts_obj);
    if (n) memset(counts, 0, n * sizeof(int64_t));
    for (uint64_t j = 0; j < size; j++) table[j].pos = -1;
    uint64_t mask = size - 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *w = items[i];
        if (!PyUnicode_Check(w)) {
            PyErr_Format(PyExc_TypeError, "words[%zd] is %.80s, not str", i, Py_TYPE(w)->tp_name);
            goto done;
        }
        Py_hash_t h = PyObject_Hash(w); /* cached in the str: later dict and set lookups reuse it */
        if (h == -1) goto done;
        uint64_t j = mix64((uint64_t)h) & mask;
        for (;;) {
            word_slot_t *s = &table[j];
            if (s->pos < 0) {
                s->hash = h;
                s->pos = i;
                ids[i] = i;
                distinct++;
                break;
            }
            if (s->hash == h && same_str(items[s->pos], w)) {
                ids[i] = s->pos;
                break;
            }
            j = (j + 1) & mask;
        }
        counts[ids[i]]++;
    }
    /* the dict, sized once for its words, in first-occurrence order (hashes are cached by now) */
    first = _PyDict_NewPresized(distinct);
    if (!first) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (ids[i] != i) continue;
        PyObject *value = PyLong_FromSsize_t(i);
        if (!value) goto done;
        int rc = PyDict_SetItem(first, items[i], value);
        Py_DECREF(value);
        if (rc < 0) goto done;
    }
    result = PyTuple_Pack(3, ids_obj, counts_obj, first);
done:
    free(table);
    Py_XDECREF(ids_obj);
    Py_XDECREF(counts_obj);
    Py_XDECREF(first);
    Py_DECREF(seq);
    return result;
}

PyDoc_STRVAR(vocabulary_ids_doc,
             "vocabulary_ids(words, ids, words_list) -> bytearray\n\n"
             "int64 id of every str in words in the vocabulary ids (dict word -> int id), adding a word\n"
             "not seen before with the next id (len(words_list)) to ids and appending it to words_list, in\n"
             "order of first appearance: what signals/vocabulary.py's Vocabulary.ids does. Each distinct\n"
             "word of the call is looked up in the (large) dict once. Runs without releasing the GIL, so\n"
             "no other thread sees the dict and the list disagree.");

static PyObject *py_vocabulary_ids(PyObject *self, PyObject *args) {
    PyObject *words_obj, *vocab, *words_list;
    if (!PyArg_ParseTuple(args, "OO!O!:vocabulary_ids", &words_obj, &PyDict_Type, &vocab, &PyList_Type,
                          &words_list))
        return NULL;
    PyObject *seq = PySequence_Fast(words_obj, "words must be a sequence of str");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    PyObject *ids_obj = PyByteArray_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(int64_t));
    PyObject *result = NULL;
    uint64_t size = table_size_for(n);
    word_slot_t *table = malloc(size * sizeof(word_slot_t));
    if (!ids_obj) goto done;
    if (!table) {
        PyErr_NoMemory();
        goto done;
    }
    int64_t *ids = (int64_t *)PyByteArray_AS_STRING(ids_obj);
    for (uint64_t j = 0; j < size; j++) table[j].pos = -1;
    uint64_t mask = size - 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *w = items[i];
        if (!PyUnicode_Check(w)) {
            PyErr_Format(PyExc_TypeError, "words[%zd] is %.80s, not str", i, Py_TYPE(w)->tp_name);
            goto done;
        }
        Py_hash_t h = PyObject_Hash(w);
        if (h == -1) goto done;
        uint64_t j = mix64((uint64_t)h) & mask;
        for (;;) {
            word_slot_t *s = &table[j];
            if (s->pos < 0) { /* first time in this call: ask the vocabulary */
                s->hash = h;
                s->pos = i;
                PyObject *found = PyDict_GetItemWithError(vocab, w); /* borrowed */
                long long id;
                if (found) {
                    id = PyLong_AsLongLong(found);
                    if (id == -1 && PyErr_Occurred()) goto done;
                } else {
                    if (PyErr_Occurred()) goto done;
                    id = (long long)PyList_GET_SIZE(words_list);
                    PyObject *value = PyLong_FromLongLong(id);
                    if (!value) goto done;
                    int rc = PyDict_SetItem(vocab, w, value);
                    Py_DECREF(value);
                    if (rc < 0 || PyList_Append(words_list, w) < 0) goto done;
                }
                ids[i] = id;
                break;
            }
            if (s->hash == h && same_str(items[s->pos], w)) {
                ids[i] = ids[s->pos];
                break;
            }
            j = (j + 1) & mask;
        }
    }
    result = ids_obj;
    ids_obj = NULL;
done:
    free(table);
    Py_XDECREF(ids_obj);
    Py_DECREF(seq);
    return result;
}

/* ------------------------------------------------------------------------------------------------ */
/* line signals (signals/lines.py): per "\n"-separated piece, counts by the str predicates          */
/* ------------------------------------------------------------------------------------------------ */

static PyObject *list_from(const int64_t *values, Py_ssize_t count) {
    PyObject *list = PyList_New(count);
    if (!list) return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *v = PyLong_FromLongLong(values[i]);
        if (!v) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, v);
    }
    return list;
}

PyDoc_STRVAR(line_stats_doc,
             "line_stats(text, num_lines) -> (words, lengths, numeric)\n\n"
             "For each of the first num_lines \"\\n\"-separated pieces of text: the number of words of\n"
             "piece.split(), the length of \" \".join(piece.split()) and the number of characters with\n"
             "str.isnumeric() (Py_UNICODE_ISSPACE / Py_UNICODE_ISNUMERIC, the predicates str uses).");

static PyObject *py_line_stats(PyObject *self, PyObject *args) {
    PyObject *text;
    Py_ssize_t num_lines;
    if (!PyArg_ParseTuple(args, "Un:line_stats", &text, &num_lines)) return NULL;
    if (num_lines < 0) num_lines = 0;
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    /* at most one piece per newline plus one */
    Py_ssize_t cap = num_lines;
    int64_t *buf = malloc(3 * (cap ? cap : 1) * sizeof(int64_t));
    if (!buf) return PyErr_NoMemory();
    int64_t *words = buf, *lengths = buf + cap, *numeric = buf + 2 * cap;
    Py_ssize_t line = 0;
    int64_t w = 0, chars = 0, num = 0;
    int in_word = 0;
    for (Py_ssize_t i = 0; i <= len && line < num_lines; i++) {
        Py_UCS4 ch = i < len ? PyUnicode_READ(kind, data, i) : '\n';
        if (ch == '\n') {
            words[line] = w;
            lengths[line] = chars + (w > 0 ? w - 1 : 0);
            numeric[line] = num;
            line++;
            w = chars = num = 0;
            in_word = 0;
            continue;
        }
        if (Py_UNICODE_ISSPACE(ch)) {
            in_word = 0;
        } else {
            if (!in_word) w++;
            in_word = 1;
            chars++;
            num += ch < 128 ? (ch >= '0' && ch <= '9') : (Py_UNICODE_ISNUMERIC(ch) ? 1 : 0);
        }
    }
    PyObject *a = list_from(words, line), *b = list_from(lengths, line), *c = list_from(numeric, line);
    free(buf);
    PyObject *result = (a && b && c) ? PyTuple_Pack(3, a, b, c) : NULL;
    Py_XDECREF(a);
    Py_XDECREF(b);
    Py_XDECREF(c);
    return result;
}

PyDoc_STRVAR(upper_per_line_doc,
             "upper_per_line(text, num_lines) -> list\n\n"
             "For each of the first num_lines \"\\n\"-separated pieces of text, the number of characters\n"
             "with str.isupper() (Py_UNICODE_ISUPPER, the predicate a one-character str.isupper uses).");

static PyObject *py_upper_per_line(PyObject *self, PyObject *args) {
    PyObject *text;
    Py_ssize_t num_lines;
    if (!PyArg_ParseTuple(args, "Un:upper_per_line", &text, &num_lines)) return NULL;
    if (num_lines < 0) num_lines = 0;
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    int64_t *counts = malloc((num_lines ? num_lines : 1) * sizeof(int64_t));
    if (!counts) return PyErr_NoMemory();
    Py_ssize_t line = 0;
    int64_t upper = 0;
    for (Py_ssize_t i = 0; i <= len && line < num_lines; i++) {
        Py_UCS4 ch = i < len ? PyUnicode_READ(kind, data, i) : '\n';
        if (ch == '\n') {
            counts[line++] = upper;
            upper = 0;
        } else if (ch < 128 ? (ch >= 'A' && ch <= 'Z') : Py_UNICODE_ISUPPER(ch)) {
            upper++;
        }
    }
    PyObject *result = list_from(counts, line);
    free(counts);
    return result;
}

/* ------------------------------------------------------------------------------------------------ */
/* WordPunct tokens (signals/text_normalization.py): maximal runs of one non-space class            */
/* ------------------------------------------------------------------------------------------------ */

PyDoc_STRVAR(wordpunct_doc,
             "wordpunct(text, classes) -> list\n\n"
             "nltk's WordPunct tokens of text (\\w+|[^\\w\\s]+): the maximal runs of code points of one class,\n"
             "word (1) or other (2), skipping space (0), where classes is a uint8 buffer indexed by code point\n"
             "(text_normalization's \"wordpunct_classes\" table; code points past its end count as other).");

static inline int class_of(Py_UCS4 ch, const unsigned char *classes, Py_ssize_t num_classes) {
    return (Py_ssize_t)ch < num_classes ? classes[ch] : 2;
}

static PyObject *py_wordpunct(PyObject *self, PyObject *args) {
    PyObject *text;
    Py_buffer table;
    if (!PyArg_ParseTuple(args, "Uy*:wordpunct", &text, &table)) return NULL;
    const unsigned char *classes = (const unsigned char *)table.buf;
    Py_ssize_t num_classes = table.len;
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    PyObject *out = PyList_New(0);
    if (!out) {
        PyBuffer_Release(&table);
        return NULL;
    }
#define CLASS_AT(pos) class_of(PyUnicode_READ(kind, data, (pos)), classes, num_classes)
    Py_ssize_t i = 0;
    while (i < len) {
        int cls = CLASS_AT(i);
        if (cls == 0) {
            i++;
            continue;
        }
        Py_ssize_t j = i + 1;
        while (j < len && CLASS_AT(j) == cls) j++;
        PyObject *token = PyUnicode_Substring(text, i, j);
        if (!token || PyList_Append(out, token) < 0) {
            Py_XDECREF(token);
            Py_DECREF(out);
            PyBuffer_Release(&table);
            return NULL;
        }
        Py_DECREF(token);
        i = j;
    }
#undef CLASS_AT
    PyBuffer_Release(&table);
    return out;
}

/* ------------------------------------------------------------------------------------------------ */
/* DSIR (signals/importance.py, signals/stable_hash.py, signals/cpython_hash.py)                    */
/* ------------------------------------------------------------------------------------------------ */

static inline uint64_t rotl64(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

#define SIP_HALF_ROUND(a, b, c, d, s, t) \
    a += b;                              \
    c += d;                              \
    b = rotl64(b, s) ^ a;                \
    d = rotl64(d, t) ^ c;                \
    a = rotl64(a, 32);

#define SIP_SINGLE_ROUND(v0, v1, v2, v3)       \
    SIP_HALF_ROUND(v0, v1, v2, v3, 13, 16);    \
    SIP_HALF_ROUND(v2, v1, v0, v3, 17, 21);

/* CPython's siphash (Python/pyhash.c) with c compression and d finalization rounds */
static uint64_t siphash_cd(uint64_t k0, uint64_t k1, const uint8_t *in, Py_ssize_t size, int c, int d) {
    uint64_t b = (uint64_t)size << 56;
    uint64_t v0 = k0 ^ 0x736f6d6570736575ULL;
    uint64_t v1 = k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ULL;
    uint64_t v3 = k1 ^ 0x7465646279746573ULL;
    while (size >= 8) {
        uint64_t mi = 0;
        for (int k = 0; k < 8; k++) mi |= (uint64_t)in[k] << (8 * k); /* little-endian load */
        in += 8;
        size -= 8;
        v3 ^= mi;
        for (int r = 0; r < c; r++) { SIP_SINGLE_ROUND(v0, v1, v2, v3); }
        v0 ^= mi;
    }
    uint64_t t = 0;
    for (Py_ssize_t k = 0; k < size; k++) t |= (uint64_t)in[k] << (8 * k);
    b |= t;
    v3 ^= b;
    for (int r = 0; r < c; r++) { SIP_SINGLE_ROUND(v0, v1, v2, v3); }
    v0 ^= b;
    v2 ^= 0xff;
    for (int r = 0; r < d; r++) { SIP_SINGLE_ROUND(v0, v1, v2, v3); }
    return (v0 ^ v1) ^ (v2 ^ v3);
}

PyDoc_STRVAR(siphash_strs_doc,
             "siphash_strs(strings, k0, k1, c_rounds, d_rounds) -> bytearray\n\n"
             "int64 hash(s) of every str as a CPython whose hash secret is (k0, k1) computes it: SipHash-c-d\n"
             "over the PEP 393 bytes (len * kind), 0 for an empty string, -2 for -1 (_Py_HashBytes).\n"
             "signals/cpython_hash.py's numpy path computes the same numbers.");

static PyObject *py_siphash_strs(PyObject *self, PyObject *args) {
    PyObject *strings;
    unsigned long long k0, k1;
    int c, d;
    if (!PyArg_ParseTuple(args, "OKKii:siphash_strs", &strings, &k0, &k1, &c, &d)) return NULL;
    PyObject *seq = PySequence_Fast(strings, "strings must be a sequence of str");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    PyObject *out = PyByteArray_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(int64_t));
    if (!out) {
        Py_DECREF(seq);
        return NULL;
    }
    int64_t *hashes = (int64_t *)PyByteArray_AS_STRING(out);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *s = items[i];
        if (!PyUnicode_Check(s)) {
            PyErr_SetString(PyExc_TypeError, "siphash_strs: every item must be a str");
            Py_DECREF(out);
            Py_DECREF(seq);
            return NULL;
        }
        Py_ssize_t size = PyUnicode_GET_LENGTH(s) * PyUnicode_KIND(s);
        if (size == 0) {
            hashes[i] = 0;
            continue;
        }
        int64_t h = (int64_t)siphash_cd(k0, k1, (const uint8_t *)PyUnicode_DATA(s), size, c, d);
        hashes[i] = h == -1 ? -2 : h;
    }
    Py_DECREF(seq);
    return out;
}

PyDoc_STRVAR(gram_counts_doc,
             "gram_counts(word_ids, column, buckets, rpv2_mode, constants) -> bytearray\n\n"
             "float64 counts per bucket of a document's unigrams and bigrams (RPv2's hash_feature), from\n"
             "word_ids (int64) and the vocabulary's DSIR column (uint64 rows: unigram bucket, lead, follow;\n"
             "see signals/stable_hash.py). A bigram's key is lead(a) + follow(b); rpv2_mode finishes it as\n"
             "CPython's tuplehash (constants: XXPRIME_1, len-2 mangle, value for -1) then abs(); else as\n"
             "fmix64 (constants: C1, C2); then modulo buckets. signals/stable_hash.py's numpy path agrees.");

static PyObject *py_gram_counts(PyObject *self, PyObject *args) {
    Py_buffer ids_buf, col_buf;
    Py_ssize_t buckets;
    int rpv2_mode;
    unsigned long long c1, c2, c3;
    if (!PyArg_ParseTuple(args, "y*y*npKKK:gram_counts", &ids_buf, &col_buf, &buckets, &rpv2_mode, &c1, &c2, &c3))
        return NULL;
    Py_ssize_t n = ids_buf.len / (Py_ssize_t)sizeof(int64_t);
    Py_ssize_t rows = col_buf.len / (Py_ssize_t)(3 * sizeof(uint64_t));
    const int64_t *ids = (const int64_t *)ids_buf.buf;
    const uint64_t *col = (const uint64_t *)col_buf.buf;
    PyObject *out = NULL;
    if (buckets <= 0) {
        PyErr_SetString(PyExc_ValueError, "gram_counts: buckets must be > 0");
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= rows) {
            PyErr_SetString(PyExc_IndexError, "gram_counts: word id outside the column");
            goto done;
        }
    }
    out = PyByteArray_FromStringAndSize(NULL, buckets * (Py_ssize_t)sizeof(double));
    if (!out) goto done;
    double *counts = (double *)PyByteArray_AS_STRING(out);
    memset(counts, 0, buckets * sizeof(double));
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t bucket = col[3 * ids[i]];
        if (bucket >= (uint64_t)buckets) {
            PyErr_SetString(PyExc_IndexError, "gram_counts: unigram bucket out of range");
            Py_CLEAR(out);
            goto done;
        }
        counts[bucket] += 1.0;
    }
    for (Py_ssize_t i = 0; i + 1 < n; i++) {
        uint64_t key = col[3 * ids[i] + 1] + col[3 * ids[i + 1] + 2];
        uint64_t value;
        if (rpv2_mode) {
            uint64_t state = rotl64(key, 31) * c1 + c2;
            int64_t h = (int64_t)state;
            if (h == -1) h = (int64_t)c3;
            value = h < 0 ? (uint64_t)0 - (uint64_t)h : (uint64_t)h; /* abs(), as numpy on int64 */
        } else {
            key ^= key >> 33;
            key *= c1;
            key ^= key >> 33;
            key *= c2;
            key ^= key >> 33;
            value = key;
        }
        counts[value % (uint64_t)buckets] += 1.0;
    }
done:
    PyBuffer_Release(&ids_buf);
    PyBuffer_Release(&col_buf);
    return out;
}

PyDoc_STRVAR(cpython_gram_counts_doc,
             "cpython_gram_counts(words, k0, k1, c_rounds, d_rounds, buckets, constants) -> bytearray\n\n"
             "float64 counts per bucket of RPv2's hash_feature over words (a document's raw words): every\n"
             "unigram abs(hash(w)) % buckets and every bigram abs(hash((a, b))) % buckets, with hash() as a\n"
             "CPython whose hash secret is (k0, k1) computes it (SipHash-c-d of the PEP 393 bytes, then\n"
             "tuplehash). constants = (XXPRIME_1, XXPRIME_2, XXPRIME_5, len-2 mangle, value for -1), from\n"
             "signals/cpython_hash.py, whose numpy path (through the vocabulary) gives the same counts.");

static PyObject *py_cpython_gram_counts(PyObject *self, PyObject *args) {
    PyObject *words_obj;
    unsigned long long k0, k1, p1, p2, p5, mangle, minus_one;
    int c, d;
    Py_ssize_t buckets;
    if (!PyArg_ParseTuple(args, "OKKiin(KKKKK):cpython_gram_counts", &words_obj, &k0, &k1, &c, &d, &buckets,
                          &p1, &p2, &p5, &mangle, &minus_one))
        return NULL;
    if (buckets <= 0) {
        PyErr_SetString(PyExc_ValueError, "cpython_gram_counts: buckets must be > 0");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(words_obj, "words must be a sequence of str");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    PyObject *out = PyByteArray_FromStringAndSize(NULL, buckets * (Py_ssize_t)sizeof(double));
    if (!out) {
        Py_DECREF(seq);
        return NULL;
    }
    double *counts = (double *)PyByteArray_AS_STRING(out);
    memset(counts, 0, buckets * sizeof(double));
    uint64_t previous_lead = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *w = items[i];
        if (!PyUnicode_Check(w)) {
            PyErr_Format(PyExc_TypeError, "words[%zd] is %.80s, not str", i, Py_TYPE(w)->tp_name);
            Py_DECREF(out);
            Py_DECREF(seq);
            return NULL;
        }
        Py_ssize_t size = PyUnicode_GET_LENGTH(w) * PyUnicode_KIND(w);
        int64_t h = 0;
        if (size) {
            h = (int64_t)siphash_cd(k0, k1, (const uint8_t *)PyUnicode_DATA(w), size, c, d);
            if (h == -1) h = -2;
        }
        uint64_t uh = (uint64_t)h;
        counts[(h < 0 ? (uint64_t)0 - uh : uh) % (uint64_t)buckets] += 1.0;
        if (i > 0) { /* the bigram (words[i-1], words[i]) */
            uint64_t state = previous_lead + uh * p2;
            state = rotl64(state, 31) * p1 + mangle;
            int64_t bh = (int64_t)state;
            if (bh == -1) bh = (int64_t)minus_one;
            uint64_t ub = (uint64_t)bh;
            counts[(bh < 0 ? (uint64_t)0 - ub : ub) % (uint64_t)buckets] += 1.0;
        }
        previous_lead = rotl64(uh * p2 + p5, 31) * p1;
    }
    Py_DECREF(seq);
    return out;
}

/* ------------------------------------------------------------------------------------------------ */
/* per-token counts (signals/content.py, signals/natural_language.py)                               */
/* ------------------------------------------------------------------------------------------------ */

/* str.isupper() (CPython's unicode_isupper_impl) */
static int str_isupper(PyObject *s) {
    Py_ssize_t len = PyUnicode_GET_LENGTH(s);
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    if (len == 1) return Py_UNICODE_ISUPPER(PyUnicode_READ(kind, data, 0)) != 0;
    int cased = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (Py_UNICODE_ISLOWER(ch) || Py_UNICODE_ISTITLE(ch)) return 0;
        if (!cased && Py_UNICODE_ISUPPER(ch)) cased = 1;
    }
    return cased;
}

static int has_ascii_letter(PyObject *s) {
    Py_ssize_t len = PyUnicode_GET_LENGTH(s);
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    for (Py_ssize_t i = 0; i < len; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) return 1;
    }
    return 0;
}

PyDoc_STRVAR(count_tokens_doc,
             "count_tokens(tokens, what, words=None) -> int\n\n"
             "How many str in tokens: what=0, are in the set words; 1, are str.isupper(); 2, contain a\n"
             "character of [a-zA-Z] (RPv2's ALPH_REGEX search). The Python counts in signals/content.py and\n"
             "signals/natural_language.py give the same numbers.");

static PyObject *py_count_tokens(PyObject *self, PyObject *args) {
    PyObject *tokens, *words = Py_None;
    int what;
    if (!PyArg_ParseTuple(args, "Oi|O:count_tokens", &tokens, &what, &words)) return NULL;
    if (what < 0 || what > 2 || (what == 0 && !PyAnySet_Check(words))) {
        PyErr_SetString(PyExc_ValueError, "count_tokens: what must be 0 (with a set), 1 or 2");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(tokens, "tokens must be a sequence of str");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = items[i];
        if (!PyUnicode_Check(t)) {
            PyErr_Format(PyExc_TypeError, "tokens[%zd] is %.80s, not str", i, Py_TYPE(t)->tp_name);
            Py_DECREF(seq);
            return NULL;
        }
        int hit;
        if (what == 0) {
            hit = PySet_Contains(words, t);
            if (hit < 0) {
                Py_DECREF(seq);
                return NULL;
            }
        } else if (what == 1) {
            hit = str_isupper(t);
        } else {
            hit = has_ascii_letter(t);
        }
        count += hit;
    }
    Py_DECREF(seq);
    return PyLong_FromSsize_t(count);
}

/* ------------------------------------------------------------------------------------------------ */
/* JSON of the quality_signals dict (pipeline/export/rpv2_records.py)                                */
/* ------------------------------------------------------------------------------------------------ */

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} strbuf_t;

static int buf_put(strbuf_t *b, const char *s, Py_ssize_t n) {
    if (b->len + n > b->cap) {
        Py_ssize_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        char *grown = PyMem_Realloc(b->data, cap);
        if (!grown) {
            PyErr_NoMemory();
            return -1;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

/* 1: written; 0: not a value this encoder writes exactly as json does (the caller falls back); -1: error */
static int put_plain_ascii_str(strbuf_t *b, PyObject *s) {
    if (!PyUnicode_IS_ASCII(s)) return 0;
    const char *text = (const char *)PyUnicode_DATA(s);
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == '"' || c == '\\') return 0; /* json would escape it */
    }
    if (buf_put(b, "\"", 1) < 0 || buf_put(b, text, n) < 0 || buf_put(b, "\"", 1) < 0) return -1;
    return 1;
}

static int put_scalar(strbuf_t *b, PyObject *v) {
    char tmp[32];
    if (v == Py_None) return buf_put(b, "null", 4) < 0 ? -1 : 1;
    if (PyLong_CheckExact(v)) {
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow) return 0;
        if (x == -1 && PyErr_Occurred()) return -1;
        int n = snprintf(tmp, sizeof tmp, "%lld", x);
        return buf_put(b, tmp, n) < 0 ? -1 : 1;
    }
    if (PyFloat_CheckExact(v)) {
        double x = PyFloat_AS_DOUBLE(v);
        if (!isfinite(x)) return 0; /* json writes NaN / Infinity: leave those to it */
        if (x == 0.0 && !signbit(x)) return buf_put(b, "0.0", 3) < 0 ? -1 : 1;
        if (x == 1.0) return buf_put(b, "1.0", 3) < 0 ? -1 : 1;
        /* what float.__repr__ (and so json's encoder) writes */
        char *text = PyOS_double_to_string(x, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
        if (!text) return -1;
        int rc = buf_put(b, text, (Py_ssize_t)strlen(text));
        PyMem_Free(text);
        return rc < 0 ? -1 : 1;
    }
    if (PyUnicode_CheckExact(v)) return put_plain_ascii_str(b, v);
    return 0;
}

PyDoc_STRVAR(signals_json_doc,
             "signals_json(quality_signals) -> str | None\n\n"
             "json.dumps(quality_signals, separators=(\",\", \":\")) for a dict of str -> list of spans (tuples\n"
             "or lists of ints, finite floats, None and plain ASCII strings), or None when anything else\n"
             "appears (the caller then uses json). Floats are written by float.__repr__'s own routine.");

static PyObject *py_signals_json(PyObject *self, PyObject *obj) {
    if (!PyDict_CheckExact(obj)) Py_RETURN_NONE;
    strbuf_t b = {NULL, 0, 0};
    PyObject *key, *spans;
    Py_ssize_t pos = 0;
    int rc = buf_put(&b, "{", 1);
    int first = 1;
    while (rc >= 0 && PyDict_Next(obj, &pos, &key, &spans)) {
        if (!PyUnicode_CheckExact(key) || !PyList_CheckExact(spans)) goto fallback;
        if (!first && buf_put(&b, ",", 1) < 0) goto error;
        first = 0;
        rc = put_plain_ascii_str(&b, key);
        if (rc <= 0) goto check;
        if (buf_put(&b, ":[", 2) < 0) goto error;
        Py_ssize_t n = PyList_GET_SIZE(spans);
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *span = PyList_GET_ITEM(spans, i);
            PyObject **items;
            Py_ssize_t size;
            if (PyTuple_CheckExact(span)) {
                items = &PyTuple_GET_ITEM(span, 0);
                size = PyTuple_GET_SIZE(span);
            } else if (PyList_CheckExact(span)) {
                items = &PyList_GET_ITEM(span, 0);
                size = PyList_GET_SIZE(span);
            } else {
                goto fallback;
            }
            if (buf_put(&b, i ? ",[" : "[", i ? 2 : 1) < 0) goto error;
            for (Py_ssize_t k = 0; k < size; k++) {
                if (k && buf_put(&b, ",", 1) < 0) goto error;
                rc = put_scalar(&b, items[k]);
                if (rc <= 0) goto check;
            }
            if (buf_put(&b, "]", 1) < 0) goto error;
        }
        rc = buf_put(&b, "]", 1);
    }
    if (rc < 0 || buf_put(&b, "}", 1) < 0) goto error;
    PyObject *out = PyUnicode_DecodeASCII(b.data, b.len, "strict");
    PyMem_Free(b.data);
    return out;
check:
    if (rc < 0) goto error;
fallback:
    PyMem_Free(b.data);
    Py_RETURN_NONE;
error:
    PyMem_Free(b.data);
    return NULL;
}

PyDoc_STRVAR(unigram_entropy_doc,
             "unigram_entropy(first_counts, total) -> float\n\n"
             "sum(-x / total * log(x / total)) over the nonzero int64 counts in first_counts, in their order,\n"
             "added left to right from 0 (Python 3.11's sum of RPv2's generator): the same double operations\n"
             "as signals/natural_language.py's unigram_entropy, before its rounding.");

static PyObject *py_unigram_entropy(PyObject *self, PyObject *args) {
    Py_buffer counts_buf;
    long long total;
    if (!PyArg_ParseTuple(args, "y*L:unigram_entropy", &counts_buf, &total)) return NULL;
    const int64_t *counts = (const int64_t *)counts_buf.buf;
    Py_ssize_t n = counts_buf.len / (Py_ssize_t)sizeof(int64_t);
    double sum = 0.0, t = (double)total;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t x = counts[i];
        if (x <= 0) continue;
        double p = (double)x / t;
        volatile double term = ((double)(-x) / t) * log(p); /* volatile: never fused into the sum (FMA) */
        sum += term;
    }
    PyBuffer_Release(&counts_buf);
    return PyFloat_FromDouble(sum);
}

static int char_in(Py_UCS4 ch, PyObject *chars) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(chars);
    int kind = PyUnicode_KIND(chars);
    const void *data = PyUnicode_DATA(chars);
    for (Py_ssize_t i = 0; i < n; i++)
        if (PyUnicode_READ(kind, data, i) == ch) return 1;
    return 0;
}

PyDoc_STRVAR(line_edges_doc,
             "line_edges(text, num_lines, last_chars, first_chars) -> (ends, starts)\n\n"
             "For each of the first num_lines \"\\n\"-separated pieces of text: 1.0 if piece.rstrip() ends with\n"
             "one of last_chars else 0.0, and 1.0 if piece.lstrip() starts with one of first_chars else 0.0\n"
             "(rstrip/lstrip strip what Py_UNICODE_ISSPACE says, as str's do).");

static PyObject *py_line_edges(PyObject *self, PyObject *args) {
    PyObject *text, *last_chars, *first_chars;
    Py_ssize_t num_lines;
    if (!PyArg_ParseTuple(args, "UnUU:line_edges", &text, &num_lines, &last_chars, &first_chars)) return NULL;
    if (num_lines < 0) num_lines = 0;
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    PyObject *ends = PyList_New(num_lines), *starts = PyList_New(num_lines);
    if (!ends || !starts) goto error;
    Py_ssize_t line = 0, begin = 0;
    while (begin <= len && line < num_lines) {
        Py_ssize_t i = PyUnicode_FindChar(text, '\n', begin, len, 1); /* memchr-speed search */
        if (i == -2) goto error;
        if (i < 0) i = len;
        /* the piece is [begin, i) */
        Py_ssize_t a = begin, b = i;
        while (a < b && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, a))) a++;
        while (b > a && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, b - 1))) b--;
        int ends_with = b > a && char_in(PyUnicode_READ(kind, data, b - 1), last_chars);
        int starts_with = b > a && char_in(PyUnicode_READ(kind, data, a), first_chars);
        PyObject *e = PyFloat_FromDouble(ends_with ? 1.0 : 0.0), *st = PyFloat_FromDouble(starts_with ? 1.0 : 0.0);
        if (!e || !st) {
            Py_XDECREF(e);
            Py_XDECREF(st);
            goto error;
        }
        PyList_SET_ITEM(ends, line, e);
        PyList_SET_ITEM(starts, line, st);
        line++;
        begin = i + 1;
    }
    if (line < num_lines) { /* fewer pieces than asked: keep what there is */
        if (PyList_SetSlice(ends, line, num_lines, NULL) < 0 || PyList_SetSlice(starts, line, num_lines, NULL) < 0)
            goto error;
    }
    PyObject *result = PyTuple_Pack(2, ends, starts);
    Py_DECREF(ends);
    Py_DECREF(starts);
    return result;
error:
    Py_XDECREF(ends);
    Py_XDECREF(starts);
    return NULL;
}

static PyMethodDef kernel_methods[] = {
    {"repetition", py_repetition, METH_VARARGS, repetition_doc},
    {"first_positions", py_first_positions, METH_O, first_positions_doc},
    {"line_stats", py_line_stats, METH_VARARGS, line_stats_doc},
    {"upper_per_line", py_upper_per_line, METH_VARARGS, upper_per_line_doc},
    {"wordpunct", py_wordpunct, METH_VARARGS, wordpunct_doc},
    {"vocabulary_ids", py_vocabulary_ids, METH_VARARGS, vocabulary_ids_doc},
    {"siphash_strs", py_siphash_strs, METH_VARARGS, siphash_strs_doc},
    {"gram_counts", py_gram_counts, METH_VARARGS, gram_counts_doc},
    {"cpython_gram_counts", py_cpython_gram_counts, METH_VARARGS, cpython_gram_counts_doc},
    {"count_tokens", py_count_tokens, METH_VARARGS, count_tokens_doc},
    {"signals_json", py_signals_json, METH_O, signals_json_doc},
    {"unigram_entropy", py_unigram_entropy, METH_VARARGS, unigram_entropy_doc},
    {"line_edges", py_line_edges, METH_VARARGS, line_edges_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef kernel_module = {
    PyModuleDef_HEAD_INIT,
    "_signals_kernel",
    "RPv2 repetition signals (signals/repetition.py) in C; see signals/_signals_kernel.c.",
    -1,
    kernel_methods,
};

PyMODINIT_FUNC PyInit__signals_kernel(void) { return PyModule_Create(&kernel_module); }

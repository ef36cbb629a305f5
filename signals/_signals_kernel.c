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
 * line_stats and upper_per_line count, per line, what signals/lines.py's line signals divide (words,
 * normalized length, numeric and upper-case characters) with the predicates str itself uses.
 *
 * The GIL is released while counting, so Beam's threaded workers can run documents in parallel.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
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

static PyMethodDef kernel_methods[] = {
    {"repetition", py_repetition, METH_VARARGS, repetition_doc},
    {"first_positions", py_first_positions, METH_O, first_positions_doc},
    {"line_stats", py_line_stats, METH_VARARGS, line_stats_doc},
    {"upper_per_line", py_upper_per_line, METH_VARARGS, upper_per_line_doc},
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

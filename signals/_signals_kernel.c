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
 * open-addressing table. A group is named by the first position of its n-gram. Once a level has no
 * repeats, no longer n-gram can repeat and the remaining levels are zero.
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
    /* each word's group: the position of its first occurrence */
    int64_t *word_group = malloc(n * sizeof(int64_t));
    if (!table || !pos || !grp || !cnt || !cpos || !ckey || !group_at || !word_group) goto done;

    /* level 1: every word */
    uint64_t mask = tsize - 1;
    memset(table, 0xFF, tsize * sizeof(slot_t)); /* first = -1 everywhere */
    for (Py_ssize_t i = 0; i < n; i++) table_add(table, mask, ids[i], i);
    Py_ssize_t m = 0;
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

static PyMethodDef kernel_methods[] = {
    {"repetition", py_repetition, METH_VARARGS, repetition_doc},
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

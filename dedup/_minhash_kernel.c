/*
 * rpv2 MinHash kernel: RPv2-compatible shingle hashing and permuted minima in C.
 *
 * Computes exactly what dedup/minhash.py's numpy path computes (and what RedPajama-V2's
 * app/src/dedupe/minhash.py computes), only faster:
 *
 *   shingle i   = the UTF-8 bytes of " ".join(words[i : i + n])
 *   hash(s)     = the first 4 bytes of SHA-1(s), read little-endian (datasketch's sha1_hash32)
 *   value(h, j) = (((a[j] * h + b[j]) mod 2^64) mod (2^61 - 1)) & 0xFFFFFFFF
 *   signature_j = min(0xFFFFFFFF, min over shingles of value(hash, j))
 *
 * SHA-1 is written here from FIPS 180-4 (section 5.1.1 padding, 5.3.1 initial value, 6.1.2 hash
 * computation); on x86-64 CPUs with the SHA extensions the same compression function runs on the
 * SHA1RNDS4/SHA1NEXTE/SHA1MSG1/SHA1MSG2 instructions (selected at run time by CPUID; both are tested
 * against hashlib). The permutation loop is plain C that the compiler vectorizes; on x86-64 a copy
 * compiled for AVX2 and one for AVX-512 are picked at run time.
 *
 * The GIL is released while hashing, so Beam's threaded workers can run documents in parallel.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define RPV2_X86_DISPATCH 1
#include <cpuid.h>
#include <immintrin.h>
#else
#define RPV2_X86_DISPATCH 0
#endif

/* ------------------------------------------------------------------------------------------------ */
/* SHA-1 (FIPS 180-4)                                                                               */
/* ------------------------------------------------------------------------------------------------ */

typedef void (*sha1_compress_fn)(uint32_t state[5], const unsigned char *blocks, size_t nblocks);

static inline uint32_t rotl32(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static inline uint32_t load_be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline void store_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* FIPS 180-4 6.1.2: message schedule W_t, then 80 rounds with f_t / K_t from 4.1.1 and 4.2.1. The
 * schedule is kept as a 16-word ring (W_t depends only on the previous 16 words). Rounds are unrolled
 * by five with the roles of a..e rotating, instead of moving e <- d <- c <- b <- a each round. */
#define RPV2_CH(b, c, d) ((d) ^ ((b) & ((c) ^ (d))))             /* (b & c) | (~b & d) */
#define RPV2_PARITY(b, c, d) ((b) ^ (c) ^ (d))
#define RPV2_MAJ(b, c, d) (((b) & (c)) | ((d) & ((b) | (c)))) /* (b & c) | (b & d) | (c & d) */
#define RPV2_W(t) \
    (w[(t) & 15] = rotl32(w[((t) + 13) & 15] ^ w[((t) + 8) & 15] ^ w[((t) + 2) & 15] ^ w[(t) & 15], 1))
#define RPV2_R(a, b, c, d, e, f, k, wt)                     \
    do {                                                    \
        (e) += rotl32((a), 5) + f((b), (c), (d)) + (k) + (wt); \
        (b) = rotl32((b), 30);                              \
    } while (0)
/* five rounds t .. t+4; `W` is either the loaded word (t < 16) or the schedule recurrence */
#define RPV2_R5(f, k, W, t)                    \
    RPV2_R(a, b, c, d, e, f, k, W((t) + 0)); \
    RPV2_R(e, a, b, c, d, f, k, W((t) + 1)); \
    RPV2_R(d, e, a, b, c, f, k, W((t) + 2)); \
    RPV2_R(c, d, e, a, b, f, k, W((t) + 3)); \
    RPV2_R(b, c, d, e, a, f, k, W((t) + 4))
#define RPV2_WLOAD(t) (w[(t)] = load_be32(blocks + 4 * (t)))
#define RPV2_WFIRST(t) ((t) < 16 ? RPV2_WLOAD((t) & 15) : RPV2_W(t))

static void sha1_compress_portable(uint32_t state[5], const unsigned char *blocks, size_t nblocks) {
    uint32_t w[16];
    for (size_t blk = 0; blk < nblocks; blk++, blocks += 64) {
        uint32_t a = state[0], b = state[1], c = state[2], d = state[3], e = state[4];
        RPV2_R5(RPV2_CH, 0x5A827999u, RPV2_WLOAD, 0);
        RPV2_R5(RPV2_CH, 0x5A827999u, RPV2_WLOAD, 5);
        RPV2_R5(RPV2_CH, 0x5A827999u, RPV2_WLOAD, 10);
        RPV2_R5(RPV2_CH, 0x5A827999u, RPV2_WFIRST, 15);
        RPV2_R5(RPV2_PARITY, 0x6ED9EBA1u, RPV2_W, 20);
        RPV2_R5(RPV2_PARITY, 0x6ED9EBA1u, RPV2_W, 25);
        RPV2_R5(RPV2_PARITY, 0x6ED9EBA1u, RPV2_W, 30);
        RPV2_R5(RPV2_PARITY, 0x6ED9EBA1u, RPV2_W, 35);
        RPV2_R5(RPV2_MAJ, 0x8F1BBCDCu, RPV2_W, 40);
        RPV2_R5(RPV2_MAJ, 0x8F1BBCDCu, RPV2_W, 45);
        RPV2_R5(RPV2_MAJ, 0x8F1BBCDCu, RPV2_W, 50);
        RPV2_R5(RPV2_MAJ, 0x8F1BBCDCu, RPV2_W, 55);
        RPV2_R5(RPV2_PARITY, 0xCA62C1D6u, RPV2_W, 60);
        RPV2_R5(RPV2_PARITY, 0xCA62C1D6u, RPV2_W, 65);
        RPV2_R5(RPV2_PARITY, 0xCA62C1D6u, RPV2_W, 70);
        RPV2_R5(RPV2_PARITY, 0xCA62C1D6u, RPV2_W, 75);
        state[0] += a;
        state[1] += b;
        state[2] += c;
        state[3] += d;
        state[4] += e;
    }
}
#undef RPV2_WFIRST
#undef RPV2_WLOAD
#undef RPV2_R5
#undef RPV2_R
#undef RPV2_W
#undef RPV2_MAJ
#undef RPV2_PARITY
#undef RPV2_CH

#if RPV2_X86_DISPATCH
/* The same compression with the x86 SHA extensions. Each SHA1RNDS4 performs four rounds on the
 * (A, B, C, D) vector (A in the highest lane) with E + W folded into the second operand; SHA1NEXTE
 * derives the next four rounds' E (rotl(A_prev, 30)) and adds it to their message words; the message
 * schedule W_t = rotl(W_t-3 ^ W_t-8 ^ W_t-14 ^ W_t-16, 1) for four t at once is
 * SHA1MSG2(SHA1MSG1(M_g-4, M_g-3) ^ M_g-2, M_g-1), where M_g holds W_4g .. W_4g+3. */
#define RPV2_SHA_TARGET __attribute__((target("sha,sse4.1,ssse3")))

#define RPV2_SHA_GROUPS(func, first, last)                                                     \
    for (int g = (first); g < (last); g++) {                                                   \
        if (g >= 4) {                                                                          \
            msg[g & 3] = _mm_sha1msg2_epu32(                                                   \
                _mm_xor_si128(_mm_sha1msg1_epu32(msg[g & 3], msg[(g + 1) & 3]), msg[(g + 2) & 3]), \
                msg[(g + 3) & 3]);                                                             \
        }                                                                                      \
        __m128i e_w = g == 0 ? _mm_add_epi32(e_prev, msg[0]) : _mm_sha1nexte_epu32(e_prev, msg[g & 3]); \
        e_prev = abcd;                                                                         \
        abcd = _mm_sha1rnds4_epu32(abcd, e_w, func);                                           \
    }

RPV2_SHA_TARGET
static void sha1_compress_shani(uint32_t state[5], const unsigned char *blocks, size_t nblocks) {
    const __m128i bswap = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    /* lanes high..low = A, B, C, D */
    __m128i abcd = _mm_set_epi32((int)state[0], (int)state[1], (int)state[2], (int)state[3]);
    __m128i e0 = _mm_set_epi32((int)state[4], 0, 0, 0);
    for (size_t blk = 0; blk < nblocks; blk++, blocks += 64) {
        const __m128i abcd_save = abcd, e_save = e0;
        __m128i msg[4];
        for (int i = 0; i < 4; i++) {
            msg[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(blocks + 16 * i)), bswap);
        }
        __m128i e_prev = e0;
        RPV2_SHA_GROUPS(0, 0, 5)
        RPV2_SHA_GROUPS(1, 5, 10)
        RPV2_SHA_GROUPS(2, 10, 15)
        RPV2_SHA_GROUPS(3, 15, 20)
        e0 = _mm_sha1nexte_epu32(e_prev, e_save);
        abcd = _mm_add_epi32(abcd, abcd_save);
    }
    state[0] = (uint32_t)_mm_extract_epi32(abcd, 3);
    state[1] = (uint32_t)_mm_extract_epi32(abcd, 2);
    state[2] = (uint32_t)_mm_extract_epi32(abcd, 1);
    state[3] = (uint32_t)_mm_extract_epi32(abcd, 0);
    state[4] = (uint32_t)_mm_extract_epi32(e0, 3);
}
#undef RPV2_SHA_GROUPS
#endif /* RPV2_X86_DISPATCH */

/* FIPS 180-4 5.1.1 padding (0x80, zeros, 64-bit big-endian bit length) and 5.3.1 initial value. */
static void sha1_state(sha1_compress_fn compress, const unsigned char *msg, size_t len, uint32_t state[5]) {
    state[0] = 0x67452301u;
    state[1] = 0xEFCDAB89u;
    state[2] = 0x98BADCFEu;
    state[3] = 0x10325476u;
    state[4] = 0xC3D2E1F0u;
    size_t full = len / 64, rem = len % 64;
    if (full) compress(state, msg, full);
    unsigned char tail[128];
    size_t tail_len = rem < 56 ? 64 : 128;
    memcpy(tail, msg + full * 64, rem);
    tail[rem] = 0x80;
    memset(tail + rem + 1, 0, tail_len - rem - 1 - 8);
    uint64_t bits = (uint64_t)len * 8u;
    store_be32(tail + tail_len - 8, (uint32_t)(bits >> 32));
    store_be32(tail + tail_len - 4, (uint32_t)bits);
    compress(state, tail, tail_len / 64);
}

/* ------------------------------------------------------------------------------------------------ */
/* Permuted minima                                                                                  */
/* ------------------------------------------------------------------------------------------------ */

#define RPV2_MERSENNE ((uint64_t)0x1FFFFFFFFFFFFFFFull) /* 2^61 - 1 */

typedef void (*permuted_min_fn)(const uint32_t *hashes, size_t n, const uint64_t *a, const uint64_t *b,
                                size_t k, uint32_t *best);

/* x mod (2^61 - 1) = (x & p) + (x >> 61), minus p once if that reaches p; a * h + b wraps modulo
 * 2^64 as RPv2's numpy uint64 arithmetic does. */
#define RPV2_PERMUTED_MIN_BODY                                                   \
    {                                                                            \
        for (size_t j = 0; j < k; j++) best[j] = 0xFFFFFFFFu;                    \
        for (size_t i = 0; i < n; i++) {                                         \
            const uint64_t h = hashes[i];                                        \
            for (size_t j = 0; j < k; j++) {                                     \
                uint64_t x = a[j] * h + b[j];                                    \
                x = (x & RPV2_MERSENNE) + (x >> 61);                             \
                x = x >= RPV2_MERSENNE ? x - RPV2_MERSENNE : x;                  \
                const uint32_t v = (uint32_t)x;                                  \
                best[j] = v < best[j] ? v : best[j];                             \
            }                                                                    \
        }                                                                        \
    }

static void permuted_min_generic(const uint32_t *hashes, size_t n, const uint64_t *a, const uint64_t *b,
                                 size_t k, uint32_t *best) RPV2_PERMUTED_MIN_BODY

#if RPV2_X86_DISPATCH
__attribute__((target("avx2")))
static void permuted_min_avx2(const uint32_t *hashes, size_t n, const uint64_t *a, const uint64_t *b,
                              size_t k, uint32_t *best) RPV2_PERMUTED_MIN_BODY

__attribute__((target("avx512f,avx512dq,avx512vl")))
static void permuted_min_avx512(const uint32_t *hashes, size_t n, const uint64_t *a, const uint64_t *b,
                                size_t k, uint32_t *best) RPV2_PERMUTED_MIN_BODY
#endif

/* ------------------------------------------------------------------------------------------------ */
/* Dispatch                                                                                         */
/* ------------------------------------------------------------------------------------------------ */

static sha1_compress_fn best_compress = sha1_compress_portable;
static permuted_min_fn best_permuted_min = permuted_min_generic;
static const char *sha1_impl_name = "portable";
static const char *permuted_min_impl_name = "generic";

static void select_implementations(void) {
#if RPV2_X86_DISPATCH
    unsigned int eax, ebx, ecx, edx;
    int ssse3 = 0, sse41 = 0, sha = 0, avx2 = 0, avx512 = 0, osxsave = 0, ymm_os = 0, zmm_os = 0;
    if (__get_cpuid(1, &eax, &ebx, &ecx, &edx)) {
        ssse3 = (ecx >> 9) & 1;
        sse41 = (ecx >> 19) & 1;
        osxsave = (ecx >> 27) & 1;
    }
    if (osxsave) { /* the OS must save the YMM / ZMM registers (XGETBV) before AVX code may run */
        unsigned int xcr0_lo, xcr0_hi;
        __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
        ymm_os = (xcr0_lo & 0x6) == 0x6;
        zmm_os = (xcr0_lo & 0xE6) == 0xE6;
    }
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
        sha = (ebx >> 29) & 1;
        avx2 = ((ebx >> 5) & 1) && ymm_os;
        /* AVX-512 F (bit 16), DQ (bit 17), VL (bit 31) */
        avx512 = ((ebx >> 16) & 1) && ((ebx >> 17) & 1) && ((ebx >> 31) & 1) && zmm_os;
    }
    if (sha && ssse3 && sse41) {
        best_compress = sha1_compress_shani;
        sha1_impl_name = "sha-ni";
    }
    if (avx512) {
        best_permuted_min = permuted_min_avx512;
        permuted_min_impl_name = "avx512";
    } else if (avx2) {
        best_permuted_min = permuted_min_avx2;
        permuted_min_impl_name = "avx2";
    }
#endif
}

/* ------------------------------------------------------------------------------------------------ */
/* Python interface                                                                                 */
/* ------------------------------------------------------------------------------------------------ */

static sha1_compress_fn compress_for(int portable) {
    return portable ? sha1_compress_portable : best_compress;
}

/* The words joined by single spaces, UTF-8, and the byte offset of each word (offsets[i] = start of
 * word i; offsets[n_words] = total length + 1). Lone surrogates are encoded with "surrogatepass", as
 * the numpy path does. Returns 0 on success, -1 with a Python exception set. */
typedef struct {
    unsigned char *data;
    Py_ssize_t *offsets;
    Py_ssize_t n_words;
} joined_words;

static void joined_words_free(joined_words *jw) {
    PyMem_Free(jw->data);
    PyMem_Free(jw->offsets);
    jw->data = NULL;
    jw->offsets = NULL;
}

static int join_words(PyObject *words, joined_words *jw) {
    jw->data = NULL;
    jw->offsets = NULL;
    jw->n_words = 0;
    PyObject *seq = PySequence_Fast(words, "words must be a sequence of str");
    if (seq == NULL) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    PyObject **encoded = NULL; /* bytes objects for words that are not valid UTF-8 (surrogates) */
    jw->offsets = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(n + 1));
    if (jw->offsets == NULL) goto nomem;
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *w = items[i];
        if (!PyUnicode_Check(w)) {
            PyErr_Format(PyExc_TypeError, "words must be str, got %.80s", Py_TYPE(w)->tp_name);
            goto fail;
        }
        Py_ssize_t len;
        if (PyUnicode_IS_ASCII(w)) {
            len = PyUnicode_GET_LENGTH(w);
        } else if (PyUnicode_AsUTF8AndSize(w, &len) == NULL) {
            PyErr_Clear();
            if (encoded == NULL) {
                encoded = PyMem_Calloc((size_t)(n > 0 ? n : 1), sizeof(PyObject *));
                if (encoded == NULL) goto nomem;
            }
            encoded[i] = PyUnicode_AsEncodedString(w, "utf-8", "surrogatepass");
            if (encoded[i] == NULL) goto fail;
            len = PyBytes_GET_SIZE(encoded[i]);
        }
        jw->offsets[i] = total;
        total += len + 1;
    }
    jw->offsets[n] = total;
    jw->data = PyMem_Malloc((size_t)(total > 0 ? total : 1));
    if (jw->data == NULL) goto nomem;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *w = items[i];
        const char *src;
        Py_ssize_t len = jw->offsets[i + 1] - jw->offsets[i] - 1;
        if (encoded != NULL && encoded[i] != NULL) {
            src = PyBytes_AS_STRING(encoded[i]);
        } else if (PyUnicode_IS_ASCII(w)) {
            src = (const char *)PyUnicode_DATA(w);
        } else {
            src = PyUnicode_AsUTF8AndSize(w, &len); /* cached by the first pass */
        }
        memcpy(jw->data + jw->offsets[i], src, (size_t)len);
        jw->data[jw->offsets[i] + len] = ' ';
    }
    jw->n_words = n;
    if (encoded != NULL) {
        for (Py_ssize_t i = 0; i < n; i++) Py_XDECREF(encoded[i]);
        PyMem_Free(encoded);
    }
    Py_DECREF(seq);
    return 0;
nomem:
    PyErr_NoMemory();
fail:
    if (encoded != NULL) {
        for (Py_ssize_t i = 0; i < n; i++) Py_XDECREF(encoded[i]);
        PyMem_Free(encoded);
    }
    Py_DECREF(seq);
    joined_words_free(jw);
    return -1;
}

/* hashes[i] = sha1_hash32 of shingle i; n_shingles = n_words - ngram_size + 1 > 0. No GIL needed. */
static void hash_shingles(sha1_compress_fn compress, const joined_words *jw, Py_ssize_t ngram_size,
                          uint32_t *hashes) {
    const Py_ssize_t n_shingles = jw->n_words - ngram_size + 1;
    uint32_t state[5];
    for (Py_ssize_t i = 0; i < n_shingles; i++) {
        const Py_ssize_t start = jw->offsets[i], end = jw->offsets[i + ngram_size] - 1;
        sha1_state(compress, jw->data + start, (size_t)(end - start), state);
        /* the digest's first 4 bytes are state[0] big-endian; read little-endian that is a byte swap */
        const uint32_t h0 = state[0];
        hashes[i] = (h0 >> 24) | ((h0 >> 8) & 0xFF00u) | ((h0 << 8) & 0xFF0000u) | (h0 << 24);
    }
}

static int get_permutations(Py_buffer *a, Py_buffer *b, size_t *k) {
    if (a->len != b->len || a->len % 8 != 0) {
        PyErr_SetString(PyExc_ValueError, "a and b must be uint64 buffers of equal length");
        return -1;
    }
    *k = (size_t)(a->len / 8);
    return 0;
}

static PyObject *py_sha1(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer data;
    int portable = 0;
    if (!PyArg_ParseTuple(args, "y*|p:sha1", &data, &portable)) return NULL;
    uint32_t state[5];
    sha1_state(compress_for(portable), (const unsigned char *)data.buf, (size_t)data.len, state);
    PyBuffer_Release(&data);
    unsigned char digest[20];
    for (int i = 0; i < 5; i++) store_be32(digest + 4 * i, state[i]);
    return PyBytes_FromStringAndSize((const char *)digest, 20);
}

static PyObject *py_shingle_hashes(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *words;
    Py_ssize_t ngram_size;
    int portable = 0;
    if (!PyArg_ParseTuple(args, "On|p:shingle_hashes", &words, &ngram_size, &portable)) return NULL;
    if (ngram_size < 1) return PyErr_Format(PyExc_ValueError, "ngram_size must be >= 1, got %zd", ngram_size);
    joined_words jw;
    if (join_words(words, &jw) < 0) return NULL;
    Py_ssize_t n_shingles = jw.n_words >= ngram_size ? jw.n_words - ngram_size + 1 : 0;
    PyObject *out = PyBytes_FromStringAndSize(NULL, n_shingles * 4);
    if (out != NULL && n_shingles > 0) {
        uint32_t *hashes = (uint32_t *)PyBytes_AS_STRING(out);
        sha1_compress_fn compress = compress_for(portable);
        Py_BEGIN_ALLOW_THREADS
        hash_shingles(compress, &jw, ngram_size, hashes);
        Py_END_ALLOW_THREADS
    }
    joined_words_free(&jw);
    return out;
}

static PyObject *py_permuted_min(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer hashes, a, b;
    int generic = 0;
    if (!PyArg_ParseTuple(args, "y*y*y*|p:permuted_min", &hashes, &a, &b, &generic)) return NULL;
    PyObject *out = NULL;
    size_t k;
    if (hashes.len % 4 != 0) {
        PyErr_SetString(PyExc_ValueError, "hashes must be a uint32 buffer");
    } else if (get_permutations(&a, &b, &k) == 0) {
        out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(k * 4));
        if (out != NULL) {
            permuted_min_fn fn = generic ? permuted_min_generic : best_permuted_min;
            uint32_t *best = (uint32_t *)PyBytes_AS_STRING(out);
            Py_BEGIN_ALLOW_THREADS
            fn((const uint32_t *)hashes.buf, (size_t)hashes.len / 4, (const uint64_t *)a.buf,
               (const uint64_t *)b.buf, k, best);
            Py_END_ALLOW_THREADS
        }
    }
    PyBuffer_Release(&hashes);
    PyBuffer_Release(&a);
    PyBuffer_Release(&b);
    return out;
}

static PyObject *py_signature(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *words;
    Py_ssize_t ngram_size;
    Py_buffer a, b;
    int big_endian = 0, portable = 0;
    if (!PyArg_ParseTuple(args, "Ony*y*|pp:signature", &words, &ngram_size, &a, &b, &big_endian, &portable)) {
        return NULL;
    }
    PyObject *out = NULL;
    size_t k;
    joined_words jw = {NULL, NULL, 0};
    if (ngram_size < 1) {
        PyErr_Format(PyExc_ValueError, "ngram_size must be >= 1, got %zd", ngram_size);
        goto done;
    }
    if (get_permutations(&a, &b, &k) < 0 || join_words(words, &jw) < 0) goto done;
    if (jw.n_words < ngram_size) {
        out = Py_NewRef(Py_None);
        goto done;
    }
    Py_ssize_t n_shingles = jw.n_words - ngram_size + 1;
    uint32_t *hashes = PyMem_Malloc(sizeof(uint32_t) * (size_t)n_shingles);
    if (hashes == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(k * 4));
    if (out != NULL) {
        uint32_t *best = (uint32_t *)PyBytes_AS_STRING(out);
        sha1_compress_fn compress = compress_for(portable);
        permuted_min_fn permuted_min = portable ? permuted_min_generic : best_permuted_min;
        Py_BEGIN_ALLOW_THREADS
        hash_shingles(compress, &jw, ngram_size, hashes);
        permuted_min(hashes, (size_t)n_shingles, (const uint64_t *)a.buf, (const uint64_t *)b.buf, k, best);
        if (big_endian) {
            unsigned char *p = (unsigned char *)best;
            for (size_t j = 0; j < k; j++) store_be32(p + 4 * j, best[j]);
        }
        Py_END_ALLOW_THREADS
    }
    PyMem_Free(hashes);
done:
    joined_words_free(&jw);
    PyBuffer_Release(&a);
    PyBuffer_Release(&b);
    return out;
}

static PyMethodDef kernel_methods[] = {
    {"sha1", py_sha1, METH_VARARGS,
     "sha1(data, portable=False) -> bytes: the 20-byte SHA-1 digest (for tests against hashlib)."},
    {"shingle_hashes", py_shingle_hashes, METH_VARARGS,
     "shingle_hashes(words, ngram_size, portable=False) -> bytes: sha1_hash32 of every space-joined\n"
     "word n-gram, as native-order uint32 (duplicates included; empty below ngram_size words)."},
    {"permuted_min", py_permuted_min, METH_VARARGS,
     "permuted_min(hashes_u32, a_u64, b_u64, generic=False) -> bytes: per permutation, the min of\n"
     "((a*h + b) mod 2^64) mod (2^61-1) & 0xFFFFFFFF over the hashes (0xFFFFFFFF if none), uint32."},
    {"signature", py_signature, METH_VARARGS,
     "signature(words, ngram_size, a_u64, b_u64, big_endian=False, portable=False) -> bytes | None:\n"
     "the MinHash signature as uint32 (native or big-endian order), None below ngram_size words.\n"
     "portable=True runs the code a CPU without SHA/AVX extensions runs (portable SHA-1, generic loop)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef kernel_module = {
    PyModuleDef_HEAD_INIT,
    "_minhash_kernel",
    "RPv2-compatible MinHash kernel (SHA-1 shingle hashes and permuted minima) in C.",
    -1,
    kernel_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__minhash_kernel(void) {
    select_implementations();
    PyObject *m = PyModule_Create(&kernel_module);
    if (m == NULL) return NULL;
    if (PyModule_AddStringConstant(m, "SHA1_IMPL", sha1_impl_name) < 0 ||
        PyModule_AddStringConstant(m, "PERMUTED_MIN_IMPL", permuted_min_impl_name) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

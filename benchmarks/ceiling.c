/* The C ceiling of the binary kernels on the machine it runs on (issue 15).
 *
 * Hand-written XNOR-popcount kernels on L2-resident data, reporting G binary-MAC/s
 * (bits of XOR-popcount per second) as one line of JSON:
 *   - "dot": one row of x against 64 rows of w, 512 words (32768 bits) each: the
 *     batch-1 GEMV shape. AVX2: Harley-Seal carry-save adders over 16 vectors with a
 *     vpshufb nibble-table popcount of the sixteens (Mula, Kurz and Lemire, "Faster
 *     population counts using AVX2 instructions", 2018). AVX-512 VPOPCNTDQ: vpopcntq
 *     with 4 independent accumulators.
 *   - "gemm": 8 rows of x against 64 rows of w (512 words): a register-tiled GEMM.
 *     AVX2: 2x4 tiles of byte accumulators (vpshufb popcount, vpaddb across up to 31
 *     vectors, one vpsadbw widening). AVX-512 VPOPCNTDQ: 4x4 tiles of vpopcntq.
 * Built by benchmarks/kernels.py at benchmark time:
 *   gcc -O3 -march=native ceiling.c                      (native row)
 *   gcc -O3 -march=native -mno-avx512f -mavx2 ceiling.c  (AVX2 row)
 * Each figure: the best of 40 timed runs of at least 5 ms each (the least disturbed).
 */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define K_WORDS 512
#define W_ROWS 64
#define X_ROWS 8

static uint64_t xs[X_ROWS][K_WORDS] __attribute__((aligned(64)));
static uint64_t ws[W_ROWS][K_WORDS] __attribute__((aligned(64)));
static volatile uint64_t sink;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

#if defined(__AVX512VPOPCNTDQ__) && defined(__AVX512F__)
#define KERNELS "avx512 vpopcntq"

static uint64_t dot(const uint64_t *x, const uint64_t *w) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (int k = 0; k < K_WORDS; k += 32) {
        a0 = _mm512_add_epi64(a0, _mm512_popcnt_epi64(_mm512_xor_si512(
            _mm512_load_si512(x + k), _mm512_load_si512(w + k))));
        a1 = _mm512_add_epi64(a1, _mm512_popcnt_epi64(_mm512_xor_si512(
            _mm512_load_si512(x + k + 8), _mm512_load_si512(w + k + 8))));
        a2 = _mm512_add_epi64(a2, _mm512_popcnt_epi64(_mm512_xor_si512(
            _mm512_load_si512(x + k + 16), _mm512_load_si512(w + k + 16))));
        a3 = _mm512_add_epi64(a3, _mm512_popcnt_epi64(_mm512_xor_si512(
            _mm512_load_si512(x + k + 24), _mm512_load_si512(w + k + 24))));
    }
    return _mm512_reduce_add_epi64(
        _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
}

#define PC512(acc, xv, wv) acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_xor_si512(xv, wv)))

static void tile(int b, int o, uint64_t out[X_ROWS][W_ROWS]) {
    __m512i a00 = _mm512_setzero_si512(), a01 = a00, a02 = a00, a03 = a00, a10 = a00,
            a11 = a00, a12 = a00, a13 = a00, a20 = a00, a21 = a00, a22 = a00, a23 = a00,
            a30 = a00, a31 = a00, a32 = a00, a33 = a00;
    for (int k = 0; k < K_WORDS; k += 8) {
        __m512i x0 = _mm512_load_si512(&xs[b][k]), x1 = _mm512_load_si512(&xs[b + 1][k]);
        __m512i x2 = _mm512_load_si512(&xs[b + 2][k]), x3 = _mm512_load_si512(&xs[b + 3][k]);
        __m512i wv = _mm512_load_si512(&ws[o][k]);
        PC512(a00, x0, wv); PC512(a10, x1, wv); PC512(a20, x2, wv); PC512(a30, x3, wv);
        wv = _mm512_load_si512(&ws[o + 1][k]);
        PC512(a01, x0, wv); PC512(a11, x1, wv); PC512(a21, x2, wv); PC512(a31, x3, wv);
        wv = _mm512_load_si512(&ws[o + 2][k]);
        PC512(a02, x0, wv); PC512(a12, x1, wv); PC512(a22, x2, wv); PC512(a32, x3, wv);
        wv = _mm512_load_si512(&ws[o + 3][k]);
        PC512(a03, x0, wv); PC512(a13, x1, wv); PC512(a23, x2, wv); PC512(a33, x3, wv);
    }
    __m512i acc[16] = {a00, a01, a02, a03, a10, a11, a12, a13,
                       a20, a21, a22, a23, a30, a31, a32, a33};
    for (int i = 0; i < 16; i++) out[b + i / 4][o + i % 4] = _mm512_reduce_add_epi64(acc[i]);
}
#define TILE_B 4

#elif defined(__AVX2__)
#define KERNELS "avx2 harley-seal dot, 2x4 byte-accumulator gemm"

static inline __m256i byte_counts(__m256i v) {
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1,
                                         1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(0x0f);
    __m256i lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(v, low));
#ifdef __GFNI__
    /* the high nibble of every byte in one instruction (what LLVM emits with GFNI) */
    __m256i high = _mm256_gf2p8affine_epi64_epi8(v, _mm256_set1_epi64x(0x1020408000000000LL), 0);
#else
    __m256i high = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
#endif
    __m256i hi = _mm256_shuffle_epi8(lut, high);
    return _mm256_add_epi8(lo, hi);
}

static inline __m256i popcount256(__m256i v) {
    return _mm256_sad_epu8(byte_counts(v), _mm256_setzero_si256());
}

static inline uint64_t hsum(__m256i v) {
    return (uint64_t)_mm256_extract_epi64(v, 0) + (uint64_t)_mm256_extract_epi64(v, 1) +
           (uint64_t)_mm256_extract_epi64(v, 2) + (uint64_t)_mm256_extract_epi64(v, 3);
}

#define CSA(h, l, a, b, c)                                                  \
    do {                                                                    \
        __m256i u_ = _mm256_xor_si256(a, b);                                \
        h = _mm256_or_si256(_mm256_and_si256(a, b), _mm256_and_si256(u_, c)); \
        l = _mm256_xor_si256(u_, c);                                        \
    } while (0)

#define LD(j) _mm256_xor_si256(_mm256_load_si256((const __m256i *)(x + k + 4 * (j))), \
                               _mm256_load_si256((const __m256i *)(w + k + 4 * (j))))

static uint64_t dot(const uint64_t *x, const uint64_t *w) {
    __m256i total = _mm256_setzero_si256(), ones = total, twos = total, fours = total,
            eights = total, sixteens, twos_a, twos_b, fours_a, fours_b, eights_a, eights_b;
    for (int k = 0; k < K_WORDS; k += 64) {
        CSA(twos_a, ones, ones, LD(0), LD(1));
        CSA(twos_b, ones, ones, LD(2), LD(3));
        CSA(fours_a, twos, twos, twos_a, twos_b);
        CSA(twos_a, ones, ones, LD(4), LD(5));
        CSA(twos_b, ones, ones, LD(6), LD(7));
        CSA(fours_b, twos, twos, twos_a, twos_b);
        CSA(eights_a, fours, fours, fours_a, fours_b);
        CSA(twos_a, ones, ones, LD(8), LD(9));
        CSA(twos_b, ones, ones, LD(10), LD(11));
        CSA(fours_a, twos, twos, twos_a, twos_b);
        CSA(twos_a, ones, ones, LD(12), LD(13));
        CSA(twos_b, ones, ones, LD(14), LD(15));
        CSA(fours_b, twos, twos, twos_a, twos_b);
        CSA(eights_b, fours, fours, fours_a, fours_b);
        CSA(sixteens, eights, eights, eights_a, eights_b);
        total = _mm256_add_epi64(total, popcount256(sixteens));
    }
    total = _mm256_slli_epi64(total, 4);
    total = _mm256_add_epi64(total, _mm256_slli_epi64(popcount256(eights), 3));
    total = _mm256_add_epi64(total, _mm256_slli_epi64(popcount256(fours), 2));
    total = _mm256_add_epi64(total, _mm256_slli_epi64(popcount256(twos), 1));
    total = _mm256_add_epi64(total, popcount256(ones));
    return hsum(total);
}

#define PB(acc, xv, wv) acc = _mm256_add_epi8(acc, byte_counts(_mm256_xor_si256(xv, wv)))
#define WIDEN(t, acc) t += hsum(_mm256_sad_epu8(acc, _mm256_setzero_si256()))

static void tile(int b, int o, uint64_t out[X_ROWS][W_ROWS]) {
    uint64_t t00 = 0, t01 = 0, t02 = 0, t03 = 0, t10 = 0, t11 = 0, t12 = 0, t13 = 0;
    for (int k0 = 0; k0 < K_WORDS; k0 += 31 * 4) {
        int k1 = k0 + 31 * 4 < K_WORDS ? k0 + 31 * 4 : K_WORDS;
        __m256i a00 = _mm256_setzero_si256(), a01 = a00, a02 = a00, a03 = a00, a10 = a00,
                a11 = a00, a12 = a00, a13 = a00;
        for (int k = k0; k < k1; k += 4) {
            __m256i x0 = _mm256_load_si256((const __m256i *)&xs[b][k]);
            __m256i x1 = _mm256_load_si256((const __m256i *)&xs[b + 1][k]);
            __m256i wv = _mm256_load_si256((const __m256i *)&ws[o][k]);
            PB(a00, x0, wv); PB(a10, x1, wv);
            wv = _mm256_load_si256((const __m256i *)&ws[o + 1][k]);
            PB(a01, x0, wv); PB(a11, x1, wv);
            wv = _mm256_load_si256((const __m256i *)&ws[o + 2][k]);
            PB(a02, x0, wv); PB(a12, x1, wv);
            wv = _mm256_load_si256((const __m256i *)&ws[o + 3][k]);
            PB(a03, x0, wv); PB(a13, x1, wv);
        }
        WIDEN(t00, a00); WIDEN(t01, a01); WIDEN(t02, a02); WIDEN(t03, a03);
        WIDEN(t10, a10); WIDEN(t11, a11); WIDEN(t12, a12); WIDEN(t13, a13);
    }
    out[b][o] = t00; out[b][o + 1] = t01; out[b][o + 2] = t02; out[b][o + 3] = t03;
    out[b + 1][o] = t10; out[b + 1][o + 1] = t11; out[b + 1][o + 2] = t12;
    out[b + 1][o + 3] = t13;
}
#define TILE_B 2

#else
#error "ceiling.c needs AVX2 or AVX-512 VPOPCNTDQ"
#endif

static uint64_t dot_scalar(const uint64_t *x, const uint64_t *w) {
    uint64_t s = 0;
    for (int k = 0; k < K_WORDS; k++) s += (uint64_t)__builtin_popcountll(x[k] ^ w[k]);
    return s;
}

static void run_dot(void) {
    uint64_t s = 0;
    for (int o = 0; o < W_ROWS; o++) s += dot(xs[0], ws[o]);
    sink = s;
}

static uint64_t gemm_out[X_ROWS][W_ROWS];

static void run_gemm(void) {
    for (int o = 0; o < W_ROWS; o += 4)
        for (int b = 0; b < X_ROWS; b += TILE_B) tile(b, o, gemm_out);
    sink = gemm_out[X_ROWS - 1][W_ROWS - 1];
}

static double rate(void (*fn)(void), double macs) {
    double best = 1e30;
    for (int r = 0; r < 40; r++) {
        long n = 0;
        double t0 = now(), t;
        do {
            fn();
            n++;
            t = now() - t0;
        } while (t < 0.005);
        if (t / n < best) best = t / n;
    }
    return macs / best / 1e9;
}

int main(void) {
    uint64_t seed = 15;
    for (int i = 0; i < X_ROWS; i++)
        for (int k = 0; k < K_WORDS; k++) xs[i][k] = splitmix(&seed);
    for (int j = 0; j < W_ROWS; j++)
        for (int k = 0; k < K_WORDS; k++) ws[j][k] = splitmix(&seed);
    /* the kernels must agree with the scalar popcount before they are timed */
    run_gemm();
    for (int i = 0; i < X_ROWS; i++)
        for (int j = 0; j < W_ROWS; j++)
            if (gemm_out[i][j] != dot_scalar(xs[i], ws[j]) || dot(xs[i], ws[j]) != gemm_out[i][j]) {
                fprintf(stderr, "ceiling.c: kernel disagrees with the scalar popcount\n");
                return 1;
            }
    double bits = 64.0 * K_WORDS;
    double dot_g = rate(run_dot, bits * W_ROWS);
    double gemm_g = rate(run_gemm, bits * W_ROWS * X_ROWS);
    printf("{\"kernels\": \"%s\", \"dot_g_macs_per_s\": %.1f, \"gemm_g_macs_per_s\": %.1f, "
           "\"k_words\": %d, \"w_rows\": %d, \"x_rows\": %d}\n",
           KERNELS, dot_g, gemm_g, K_WORDS, W_ROWS, X_ROWS);
    return 0;
}

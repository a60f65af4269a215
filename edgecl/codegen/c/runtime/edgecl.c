/* edgecl.c - the edgecl device runtime in C99: forward blocks, head, GBM class memory,
 * learning (EM, q-bit quantisation, pseudo-exemplars, eq. 4 batches, head SGD), budget,
 * state. The same file for every model; the model is `ecl_the_model` (edgecl_model.c).
 * No malloc, no global mutable state, only <stdint.h> <stddef.h> <string.h> <math.h>.
 *
 * Float order (the Python runtime's, edgecl.kernels): the first layer sums float32 x float32
 * products in float64, taps in (di, dj, c) order, adds the bias and rounds to float32; the
 * head sums the float32 rows of the set bits, lowest first, four at a time as
 * (r0 + r1) + (r2 + r3); float64 sums over an array follow NumPy's pairwise rule.
 *
 * RNG (ECL-RNG, one stream per learn_commit, seeded with the commit's seed): SplitMix64,
 * next() = mix(state += 0x9E3779B97F4A7C15). See README.md in the export for the draws.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "edgecl.h"
#include "edgecl_blocks.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define ECL_MAGIC 0x45434C31u /* "ECL1" */
#define ECL_NAME_MAX 128
#define MU_CLIP 1e-3
#define GOLDEN 0x9E3779B97F4A7C15ull
#define ROWMUL 0xD1B54A32D192ED03ull

/* ---------------------------------------------------------------- small helpers */

static int popcount64(uint64_t x) {
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;
    return (int)((x * 0x0101010101010101ull) >> 56);
}

static int n_words(long bits) { return (int)((bits + 63) / 64); }
static size_t align8(size_t n) { return (n + 7u) & ~(size_t)7u; }

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct { uint64_t state; } ecl_rng;
static uint64_t rng_next(ecl_rng *r) { r->state += GOLDEN; return mix64(r->state); }
static double u53(uint64_t x) { return (double)(x >> 11) * (1.0 / 9007199254740992.0); }
static double rng_uniform(ecl_rng *r) { return u53(rng_next(r)); }
static double rng_normal(ecl_rng *r) {
    double u1 = 1.0 - rng_uniform(r), u2 = rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
static uint32_t rng_below(ecl_rng *r, uint32_t n) {
    return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* NumPy's pairwise sum of a float64 array (np.add.reduce: the first element, plus the
 * pairwise sum of the rest: 8 accumulators up to 128 values, halves above). */
static double pairwise_rest(const double *a, long n) {
    long i;
    if (n < 8) {
        double res = 0.0;
        for (i = 0; i < n; i++) res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8], res;
        int j;
        for (j = 0; j < 8; j++) r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8)
            for (j = 0; j < 8; j++) r[j] += a[i + j];
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    } else {
        long n2 = n / 2;
        n2 -= n2 % 8;
        return pairwise_rest(a, n2) + pairwise_rest(a + n2, n - n2);
    }
}
static double np_sum(const double *a, long n) {
    return n <= 0 ? 0.0 : a[0] + pairwise_rest(a + 1, n - 1);
}

static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n) {
    size_t i;
    int b;
    crc = ~crc;
    for (i = 0; i < n; i++) {
        crc ^= p[i];
        for (b = 0; b < 8; b++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

/* IEEE binary16 <-> binary32 (round to nearest even, as NumPy's astype(float16)) */
static float half_to_float(uint16_t h) {
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31u, m = h & 1023u, bits;
    float f;
    if (e == 0) {
        f = (float)m * (1.0f / 16777216.0f);
        return s ? -f : f;
    }
    if (e == 31) bits = s | 0x7F800000u | (m << 13);
    else bits = s | ((e + 112u) << 23) | (m << 13);
    memcpy(&f, &bits, 4);
    return f;
}
static uint16_t float_to_half(float f) {
    uint32_t x, s, e, m;
    memcpy(&x, &f, 4);
    s = (x >> 16) & 0x8000u;
    e = (x >> 23) & 255u;
    m = x & 0x7FFFFFu;
    if (e == 255) return (uint16_t)(s | 0x7C00u | (m ? 0x200u : 0u));
    if (e > 142) return (uint16_t)(s | 0x7C00u); /* overflow */
    if (e < 113) {                                /* subnormal or zero */
        uint32_t shift, mant, half, rem, r;
        if (e < 102) return (uint16_t)s;
        mant = m | 0x800000u;
        shift = 126u - e;
        r = mant >> shift;
        rem = mant & ((1u << shift) - 1u);
        half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (r & 1u))) r++;
        return (uint16_t)(s | r);
    } else {
        uint32_t r = ((e - 112u) << 10) | (m >> 13), rem = m & 0x1FFFu;
        if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) r++;
        return (uint16_t)(s | r);
    }
}

/* ---------------------------------------------------------------- forward blocks */

static int set_bit(const uint64_t *w, int j) { return (int)((w[j >> 6] >> (j & 63)) & 1u); }

static float first_layer_value(const ecl_first_layer *l, const float *x, int oy, int ox, int q) {
    double acc = 0.0;
    int di, dj, cc;
    const float *wq = l->weight + (size_t)q * l->kh * l->kw * l->c;
    for (di = 0; di < l->kh; di++) {
        int iy = oy * l->stride - l->pads[0] + di;
        for (dj = 0; dj < l->kw; dj++) {
            int ix = ox * l->stride - l->pads[2] + dj;
            int inside = iy >= 0 && iy < l->h && ix >= 0 && ix < l->w;
            for (cc = 0; cc < l->c; cc++) {
                double p = inside ? (double)x[((size_t)iy * l->w + ix) * l->c + cc]
                                  : l->pad_value;
                acc += p * (double)wq[(di * l->kw + dj) * l->c + cc];
            }
        }
    }
    if (l->bias) acc += (double)l->bias[q];
    return (float)acc;
}

static void first_layer_dims(const ecl_first_layer *l, int *ho, int *wo) {
    *ho = (l->h + l->pads[0] + l->pads[1] - l->kh) / l->stride + 1;
    *wo = (l->w + l->pads[2] + l->pads[3] - l->kw) / l->stride + 1;
}

/* The bit of output q at (oy, ox), y >= t (y <= t where flipped) for y = float32(float64
 * sum), decided first in float32: |float32 sum - exact sum| <= 32 * 2^-24 * sum |terms|
 * (10 terms at most per 9 taps with the bias, a wide margin), and rounding the float64 sum
 * to float32 is monotonic, so outside that margin the float32 sum gives the same bit; only
 * inside it the float64 sum runs (what keeps a Cortex-M4F, which has no float64 unit, fast). */
static int first_layer_bit(const ecl_first_layer *l, const float *x, int oy, int ox, int q) {
    float acc = 0.0f, mag = 0.0f, y, margin;
    int di, dj, cc, taps = l->kh * l->kw * l->c;
    const float *wq = l->weight + (size_t)q * taps;
    for (di = 0; di < l->kh; di++) {
        int iy = oy * l->stride - l->pads[0] + di;
        for (dj = 0; dj < l->kw; dj++) {
            int ix = ox * l->stride - l->pads[2] + dj;
            int inside = iy >= 0 && iy < l->h && ix >= 0 && ix < l->w;
            for (cc = 0; cc < l->c; cc++) {
                float p = inside ? x[((size_t)iy * l->w + ix) * l->c + cc] : (float)l->pad_value;
                float t = p * wq[(di * l->kw + dj) * l->c + cc];
                acc += t;
                mag += fabsf(t);
            }
        }
    }
    if (l->bias) { acc += l->bias[q]; mag += fabsf(l->bias[q]); }
    margin = mag * (float)(taps + 2) * 3.0e-7f + 1e-35f;
    if (isfinite(acc) && isfinite(margin)) {
        float d = acc - l->thr[q];
        if (d > margin) return !l->flip[q];
        if (d < -margin) return l->flip[q];
    }
    y = first_layer_value(l, x, oy, ox, q);
    return l->flip[q] ? (y <= l->thr[q]) : (y >= l->thr[q]);
}

void ecl_blk_first_layer(const ecl_first_layer *l, const float *x, uint64_t *out) {
    int ho, wo, po, qo, pi, pj, q, p, nw = n_words(l->o);
    int win = l->pool > 0 ? l->pool : 1, step = l->pool > 0 ? l->pool_stride : 1;
    first_layer_dims(l, &ho, &wo);
    po = l->pool > 0 ? (ho - l->pool) / l->pool_stride + 1 : ho;
    qo = l->pool > 0 ? (wo - l->pool) / l->pool_stride + 1 : wo;
    for (pi = 0; pi < po; pi++)
        for (pj = 0; pj < qo; pj++) {
            uint64_t *o = out + ((size_t)pi * qo + pj) * nw;
            memset(o, 0, (size_t)nw * 8);
            for (p = 0; p < win * win; p++) {
                int oy = pi * step + p / win, ox = pj * step + p % win;
                for (q = 0; q < l->o; q++)
                    if (first_layer_bit(l, x, oy, ox, q)) o[q >> 6] |= (uint64_t)1 << (q & 63);
            }
        }
}

void ecl_blk_conv_float(const ecl_first_layer *l, const float *x, float *out) {
    int ho, wo, oy, ox, q;
    first_layer_dims(l, &ho, &wo);
    for (oy = 0; oy < ho; oy++)
        for (ox = 0; ox < wo; ox++)
            for (q = 0; q < l->o; q++)
                out[((size_t)oy * wo + ox) * l->o + q] = first_layer_value(l, x, oy, ox, q);
}

static void binary_pixel(const ecl_binary_block *b, const uint64_t *x, int oy, int ox, int32_t *acc) {
    int cw = n_words(b->c), o, dy, dx, k;
    uint64_t tail = (b->c % 64) ? (((uint64_t)1 << (b->c % 64)) - 1u) : ~(uint64_t)0;
    for (o = 0; o < b->o; o++) {
        const uint64_t *w = b->weight + (size_t)o * b->kh * b->kw * cw;
        int32_t a = 0;
        for (dy = 0; dy < b->kh; dy++) {
            int iy = oy * b->stride - b->pads[0] + dy;
            for (dx = 0; dx < b->kw; dx++) {
                int ix = ox * b->stride - b->pads[2] + dx;
                const uint64_t *wt = w + (dy * b->kw + dx) * cw;
                int pc = 0;
                if (iy >= 0 && iy < b->h && ix >= 0 && ix < b->w) {
                    const uint64_t *xp = x + ((size_t)iy * b->w + ix) * cw;
                    for (k = 0; k < cw; k++) pc += popcount64(xp[k] ^ wt[k]);
                } else if (b->zero_pad) {
                    continue; /* a zero pad tap adds nothing */
                } else {
                    for (k = 0; k < cw; k++)
                        pc += popcount64((k == cw - 1 ? tail : ~(uint64_t)0) ^ wt[k]);
                }
                a += b->c - 2 * pc;
            }
        }
        acc[o] = a + b->offset;
    }
}

static void binary_dims(const ecl_binary_block *b, int *ho, int *wo) {
    *ho = (b->h + b->pads[0] + b->pads[1] - b->kh) / b->stride + 1;
    *wo = (b->w + b->pads[2] + b->pads[3] - b->kw) / b->stride + 1;
}

void ecl_blk_binary(const ecl_binary_block *b, const uint64_t *x, uint64_t *out, int32_t *acc) {
    int ho, wo, po, qo, pi, pj, p, q, n_out = b->o * b->repeat, nw = n_words(n_out);
    int win = b->pool > 0 ? b->pool : 1, step = b->pool > 0 ? b->pool_stride : 1;
    binary_dims(b, &ho, &wo);
    po = b->pool > 0 ? (ho - b->pool) / b->pool_stride + 1 : ho;
    qo = b->pool > 0 ? (wo - b->pool) / b->pool_stride + 1 : wo;
    for (pi = 0; pi < po; pi++)
        for (pj = 0; pj < qo; pj++) {
            uint64_t *o = out + ((size_t)pi * qo + pj) * nw;
            memset(o, 0, (size_t)nw * 8);
            for (p = 0; p < win * win; p++) {
                binary_pixel(b, x, pi * step + p / win, pj * step + p % win, acc);
                for (q = 0; q < n_out; q++) {
                    int32_t a = acc[q / b->repeat];
                    int bit = b->flip[q] ? (a <= b->thr[q]) : (a >= b->thr[q]);
                    if (bit) o[q >> 6] |= (uint64_t)1 << (q & 63);
                }
            }
        }
}

void ecl_blk_binary_int(const ecl_binary_block *b, const uint64_t *x, int32_t *out) {
    int ho, wo, oy, ox;
    binary_dims(b, &ho, &wo);
    for (oy = 0; oy < ho; oy++)
        for (ox = 0; ox < wo; ox++) binary_pixel(b, x, oy, ox, out + ((size_t)oy * wo + ox) * b->o);
}

void ecl_op_threshold(const ecl_threshold_op *t, const int32_t *x, uint64_t *out) {
    int i, q, n_out = t->c * t->repeat, nw = n_words(n_out);
    for (i = 0; i < t->n; i++) {
        uint64_t *o = out + (size_t)i * nw;
        memset(o, 0, (size_t)nw * 8);
        for (q = 0; q < n_out; q++) {
            int32_t a = x[(size_t)i * t->c + q / t->repeat];
            if (t->flip[q] ? (a <= t->thr[q]) : (a >= t->thr[q])) o[q >> 6] |= (uint64_t)1 << (q & 63);
        }
    }
}

void ecl_op_threshold_float(const ecl_threshold_float_op *t, const float *x, uint64_t *out) {
    int i, q, n_out = t->c * t->repeat, nw = n_words(n_out);
    for (i = 0; i < t->n; i++) {
        uint64_t *o = out + (size_t)i * nw;
        memset(o, 0, (size_t)nw * 8);
        for (q = 0; q < n_out; q++) {
            float a = x[(size_t)i * t->c + q / t->repeat];
            if (t->flip[q] ? (a <= t->thr[q]) : (a >= t->thr[q])) o[q >> 6] |= (uint64_t)1 << (q & 63);
        }
    }
}

void ecl_op_maxpool_bits(const ecl_pool_op *p, const uint64_t *x, uint64_t *out) {
    int ho = (p->h - p->size) / p->stride + 1, wo = (p->w - p->size) / p->stride + 1;
    int cw = n_words(p->c), i, j, di, dj, k;
    for (i = 0; i < ho; i++)
        for (j = 0; j < wo; j++) {
            uint64_t *o = out + ((size_t)i * wo + j) * cw;
            memset(o, 0, (size_t)cw * 8);
            for (di = 0; di < p->size; di++)
                for (dj = 0; dj < p->size; dj++)
                    for (k = 0; k < cw; k++)
                        o[k] |= x[((size_t)(i * p->stride + di) * p->w + j * p->stride + dj) * cw + k];
        }
}

void ecl_op_maxpool_float(const ecl_pool_op *p, const float *x, float *out) {
    int ho = (p->h - p->size) / p->stride + 1, wo = (p->w - p->size) / p->stride + 1;
    int i, j, di, dj, k;
    for (i = 0; i < ho; i++)
        for (j = 0; j < wo; j++)
            for (k = 0; k < p->c; k++) {
                float m = -INFINITY;
                for (di = 0; di < p->size; di++)
                    for (dj = 0; dj < p->size; dj++) {
                        float v = x[((size_t)(i * p->stride + di) * p->w + j * p->stride + dj) * p->c + k];
                        if (v > m || v != v) m = (m != m) ? m : v;
                    }
                out[((size_t)i * wo + j) * p->c + k] = m;
            }
}

void ecl_op_affine_int(const ecl_affine_op *a, const int32_t *x, float *out) {
    int i, k;
    for (i = 0; i < a->n; i++)
        for (k = 0; k < a->c; k++) {
            float v = (float)x[(size_t)i * a->c + k] * a->scale[k];
            out[(size_t)i * a->c + k] = v + a->shift[k];
        }
}

void ecl_op_affine(const ecl_affine_op *a, const float *x, float *out) {
    int i, k;
    for (i = 0; i < a->n; i++)
        for (k = 0; k < a->c; k++) {
            float v = x[(size_t)i * a->c + k] * a->scale[k];
            out[(size_t)i * a->c + k] = v + a->shift[k];
        }
}

void ecl_op_dense_float(const ecl_dense_float_op *d, const float *x, float *out) {
    int o, f;
    for (o = 0; o < d->o; o++) {
        double acc = 0.0;
        for (f = 0; f < d->f; f++) acc += (double)x[f] * (double)d->weight[(size_t)f * d->o + o];
        if (d->bias) acc += (double)d->bias[o];
        out[o] = (float)acc;
    }
}

void ecl_op_copy(const void *x, void *out, size_t bytes) { memmove(out, x, bytes); }

/* ---------------------------------------------------------------- the context */

typedef struct {
    uint32_t off;      /* record offset in the pool */
    uint32_t name_off; /* in the name pool */
    uint16_t k, q;
} ecl_cls;

struct ecl_ctx {
    uint32_t magic;
    const ecl_model *m;
    uint8_t *arena;
    size_t arena_bytes;
    int n;
    size_t pool_used, names_used;
    ecl_cls *cls;
    char *names;
    uint8_t *pool;
    int learning, n_add, upd; /* upd: the class an update adds to, else -1 */
    /* a new class's pending name waits in the name pool's tail, at names + names_used */
};

/* one class record in the pool: words, head row, [scale], bias, pi[K], count */
static size_t head_row_bytes(const ecl_model *m) { return (size_t)m->n_bits * (size_t)m->head_bits / 8u; }
static size_t words_bytes(const ecl_model *m, int k, int q) { return (size_t)n_words((long)k * m->n_bits * q) * 8u; }
static size_t record_bytes(const ecl_model *m, int k, int q) {
    return align8(words_bytes(m, k, q) + head_row_bytes(m) + 4u * (size_t)(k + 2 + (m->head_bits == 8)));
}
static size_t class_mem_bytes(const ecl_model *m, int k, int q) { return words_bytes(m, k, q) + 4u * (size_t)k + 4u; }
static size_t head_class_bytes(const ecl_model *m) { return head_row_bytes(m) + 4u + (m->head_bits == 8 ? 4u : 0u); }

typedef struct {
    uint64_t *words;
    uint8_t *head;
    float *scale, *bias, *pi;
    uint8_t *count; /* uint32, unaligned-safe via memcpy */
} ecl_rec;

static ecl_rec rec_at(const ecl_model *m, uint8_t *base, int k, int q) {
    ecl_rec r;
    uint8_t *p = base + words_bytes(m, k, q);
    r.words = (uint64_t *)(void *)base;
    r.head = p;
    p += head_row_bytes(m);
    r.scale = m->head_bits == 8 ? (float *)(void *)p : NULL;
    if (m->head_bits == 8) p += 4;
    r.bias = (float *)(void *)p;
    p += 4;
    r.pi = (float *)(void *)p;
    p += 4u * (size_t)k;
    r.count = p;
    return r;
}
static ecl_rec class_rec(const ecl_ctx *c, int i) {
    return rec_at(c->m, c->pool + c->cls[i].off, c->cls[i].k, c->cls[i].q);
}
static uint32_t rec_count(const ecl_rec *r) { uint32_t v; memcpy(&v, r->count, 4); return v; }

/* the float32 value of head weight j of a stored row */
static float head_value(const ecl_model *m, const ecl_rec *r, int j) {
    if (m->head_bits == 32) { float v; memcpy(&v, r->head + 4 * j, 4); return v; }
    if (m->head_bits == 16) { uint16_t h; memcpy(&h, r->head + 2 * j, 2); return half_to_float(h); }
    return (float)(int8_t)r->head[j] * r->scale[0];
}

static size_t ctx_layout(const ecl_model *m, uint8_t *base, ecl_ctx **out) {
    size_t off = align8(sizeof(ecl_ctx));
    ecl_ctx *c = (ecl_ctx *)(void *)base;
    size_t cls_off = off;
    off = align8(off + sizeof(ecl_cls) * (size_t)m->max_classes);
    if (base) c->cls = (ecl_cls *)(void *)(base + cls_off);
    if (base) c->names = (char *)(base + off);
    off = align8(off + m->name_pool);
    if (base) c->pool = base + off;
    off += m->pool_bytes;
    if (out) *out = c;
    return off;
}

static int valid_name(const char *name) {
    size_t n;
    if (!name) return 0;
    for (n = 0; name[n] && n <= ECL_NAME_MAX; n++)
        if ((unsigned char)name[n] < 0x20 || (unsigned char)name[n] == 0x7F) return 0;
    return n >= 1 && n <= ECL_NAME_MAX;
}

static int find_class(const ecl_ctx *c, const char *name) {
    int i;
    for (i = 0; i < c->n; i++)
        if (strcmp(c->names + c->cls[i].name_off, name) == 0) return i;
    return -1;
}

int ecl_init(void *ctx_mem, size_t ctx_bytes, void *arena, size_t arena_bytes, ecl_ctx **out) {
    const ecl_model *m = &ecl_the_model;
    ecl_ctx *c;
    int i;
    if (!ctx_mem || !out || ((uintptr_t)ctx_mem & 7u) || (arena && ((uintptr_t)arena & 7u)))
        return ECL_E_ARG;
    if (ctx_bytes < ctx_layout(m, NULL, NULL)) return ECL_E_CTX_SMALL;
    memset(ctx_mem, 0, ctx_layout(m, NULL, NULL));
    ctx_layout(m, (uint8_t *)ctx_mem, &c);
    c->m = m;
    c->arena = (uint8_t *)arena;
    c->arena_bytes = arena ? arena_bytes : 0;
    for (i = 0; i < m->n_classes; i++) {
        const ecl_model_class *mc = &m->classes[i];
        size_t len = strlen(mc->name), rb = record_bytes(m, mc->k, mc->q);
        ecl_rec r;
        int j;
        if (c->n >= m->max_classes || c->names_used + len + 1 > m->name_pool ||
            c->pool_used + rb > m->pool_bytes)
            return ECL_E_CAPACITY;
        c->cls[c->n].off = (uint32_t)c->pool_used;
        c->cls[c->n].name_off = (uint32_t)c->names_used;
        c->cls[c->n].k = (uint16_t)mc->k;
        c->cls[c->n].q = (uint16_t)mc->q;
        memcpy(c->names + c->names_used, mc->name, len + 1);
        c->names_used += len + 1;
        r = rec_at(m, c->pool + c->pool_used, mc->k, mc->q);
        memcpy(r.words, mc->words, words_bytes(m, mc->k, mc->q));
        for (j = 0; j < m->n_bits; j++) {
            size_t src = (size_t)j * m->n_classes + i, hb = (size_t)m->head_bits / 8u;
            memcpy(r.head + (size_t)j * hb, (const uint8_t *)m->head_weight + src * hb, hb);
        }
        if (r.scale) r.scale[0] = m->head_scale[i];
        r.bias[0] = m->head_bias[i];
        memcpy(r.pi, mc->pi, 4u * (size_t)mc->k);
        memcpy(r.count, &mc->count, 4);
        c->pool_used += rb;
        c->n++;
    }
    c->magic = ECL_MAGIC;
    *out = c;
    return ECL_OK;
}

static int ctx_ok(const ecl_ctx *c) { return c && c->magic == ECL_MAGIC; }

int ecl_num_classes(const ecl_ctx *ctx) { return ctx_ok(ctx) ? ctx->n : ECL_E_ARG; }

const char *ecl_class_name(const ecl_ctx *ctx, int index) {
    if (!ctx_ok(ctx) || index < 0 || index >= ctx->n) return NULL;
    return ctx->names + ctx->cls[index].name_off;
}

size_t ecl_stored_bytes(const ecl_ctx *ctx) {
    size_t s = 0;
    int i;
    if (!ctx_ok(ctx)) return 0;
    for (i = 0; i < ctx->n; i++)
        s += class_mem_bytes(ctx->m, ctx->cls[i].k, ctx->cls[i].q) + head_class_bytes(ctx->m);
    return s;
}

size_t ecl_budget_bytes(const ecl_ctx *ctx) { return ctx_ok(ctx) ? ctx->m->budget_bytes : 0; }

/* ---------------------------------------------------------------- arena and forward */

typedef struct { uint8_t *p; size_t left; } ecl_bump;
static void *bump(ecl_bump *b, size_t n) {
    void *p;
    n = align8(n);
    if (n > b->left) return NULL;
    p = b->p;
    b->p += n;
    b->left -= n;
    return p;
}


static int embed_into(const ecl_model *m, ecl_bump *b, const uint8_t *image, uint64_t *z) {
    ecl_bump save = *b;
    float *x = (float *)bump(b, (size_t)m->h * m->w * m->c * 4u);
    void *scratch = bump(b, m->fwd_scratch_bytes ? m->fwd_scratch_bytes : 8u);
    size_t i, n = (size_t)m->h * m->w * m->c;
    if (!x || !scratch) { *b = save; return ECL_E_ARENA; }
    for (i = 0; i < n; i++) {
        float v = (float)image[i] * m->scale;
        v = v - m->mean[i % (size_t)m->c];
        x[i] = v / m->std[i % (size_t)m->c];
    }
    m->embed(x, z, scratch);
    *b = save;
    return ECL_OK;
}

static int set_bits(const uint64_t *z, int n_bits, uint16_t *idx) {
    int k, cnt = 0;
    for (k = 0; k < n_words(n_bits); k++) {
        uint64_t w = z[k];
        while (w) {
            uint64_t low = w & (~w + 1u);
            idx[cnt++] = (uint16_t)(k * 64 + popcount64(low - 1u));
            w ^= low;
        }
    }
    return cnt;
}

static int level_at(const uint64_t *words, long e, int q);

/* the float32 sum of a stored head row's values at the set bits idx[0..cnt), added as the
 * Python head kernel adds them (groups of 4: (a + b) + (c + d)); values made on the fly */
static float sum_head_row(const ecl_model *m, const ecl_rec *r, const uint16_t *idx, int cnt) {
    float acc = 0.0f;
    int i = 0;
    while (i + 4 <= cnt) {
        float a = head_value(m, r, idx[i]) + head_value(m, r, idx[i + 1]);
        float b = head_value(m, r, idx[i + 2]) + head_value(m, r, idx[i + 3]);
        acc += a + b;
        i += 4;
    }
    for (; i < cnt; i++) acc += head_value(m, r, idx[i]);
    return acc;
}

/* the same sum of atab[level of bit idx[i] of the component at `base`] */
static float sum_level_row(const float *atab, const uint64_t *words, long base, int q,
                           const uint16_t *idx, int cnt) {
    float acc = 0.0f;
    int i = 0;
    while (i + 4 <= cnt) {
        float a = atab[level_at(words, base + idx[i], q)] + atab[level_at(words, base + idx[i + 1], q)];
        float b = atab[level_at(words, base + idx[i + 2], q)] + atab[level_at(words, base + idx[i + 3], q)];
        acc += a + b;
        i += 4;
    }
    for (; i < cnt; i++) acc += atab[level_at(words, base + idx[i], q)];
    return acc;
}

static void log_softmax(double *a, int n) {
    double top = a[0], lse;
    int i;
    double *e = a + n; /* caller leaves room for n more */
    for (i = 1; i < n; i++) if (a[i] > top) top = a[i];
    for (i = 0; i < n; i++) e[i] = exp(a[i] - top);
    lse = top + log(np_sum(e, n));
    for (i = 0; i < n; i++) a[i] -= lse;
}

/* level -> probability, clipped as the Python scorer and EM clip */
static double level_mu(int level, int q) {
    double mu = ((double)level + 0.5) / (double)(1 << q);
    return mu < MU_CLIP ? MU_CLIP : (mu > 1.0 - MU_CLIP ? 1.0 - MU_CLIP : mu);
}
static int level_at(const uint64_t *words, long e, int q) {
    int b, v = 0;
    for (b = 0; b < q; b++) {
        long pos = e * q + b;
        v |= (int)((words[pos >> 6] >> (pos & 63)) & 1u) << b;
    }
    return v;
}

/* log p(z | class i) under its stored mixture (the learner's dense-table scorer) */
static double class_loglik(const ecl_ctx *c, int i, const uint16_t *idx, int cnt, double *work) {
    const ecl_model *m = c->m;
    ecl_rec r = class_rec(c, i);
    int k = c->cls[i].k, q = c->cls[i].q, kk, j, t;
    double *comp = work, *col = work + k, *pis = col + m->n_bits, psum, top, lse;
    double *ltab = pis + k;                      /* 2^q values each */
    float *atab = (float *)(void *)(ltab + 256);
    for (t = 0; t < (1 << q); t++) {
        double mu = level_mu(t, q);
        ltab[t] = log1p(-mu);
        atab[t] = (float)(log(mu) - log1p(-mu));
    }
    for (kk = 0; kk < k; kk++) pis[kk] = (double)r.pi[kk];
    psum = np_sum(pis, k);
    for (kk = 0; kk < k; kk++) {
        for (j = 0; j < m->n_bits; j++) col[j] = ltab[level_at(r.words, (long)kk * m->n_bits + j, q)];
        comp[kk] = (double)sum_level_row(atab, r.words, (long)kk * m->n_bits, q, idx, cnt) +
                   (np_sum(col, m->n_bits) + log(pis[kk] / psum));
    }
    top = comp[0];
    for (kk = 1; kk < k; kk++) if (comp[kk] > top) top = comp[kk];
    for (kk = 0; kk < k; kk++) col[kk] = exp(comp[kk] - top);
    lse = top + log(np_sum(col, k));
    return lse;
}


static int predict_on(ecl_ctx *c, ecl_bump *b, const uint8_t *image, int *out) {
    const ecl_model *m = c->m;
    int kmax = 1, i, cnt, best = 0, rc;
    uint64_t *z;
    uint16_t *idx;
    double *score, *ll, *work;
    for (i = 0; i < c->n; i++) if (c->cls[i].k > kmax) kmax = c->cls[i].k;
    z = (uint64_t *)bump(b, (size_t)n_words(m->n_bits) * 8u);
    idx = (uint16_t *)bump(b, (size_t)m->n_bits * 2u);
    score = (double *)bump(b, (size_t)c->n * 8u * 2u);
    ll = (double *)bump(b, (size_t)c->n * 8u * 2u);
    work = (double *)bump(b, (size_t)(2 * kmax + m->n_bits + 256) * 8u + 256u * 4u);
    if (!z || !idx || !score || !ll || !work) return ECL_E_ARENA;
    rc = embed_into(m, b, image, z);
    if (rc) return rc;
    cnt = set_bits(z, m->n_bits, idx);
    for (i = 0; i < c->n; i++) {
        ecl_rec r = class_rec(c, i);
        score[i] = (double)(sum_head_row(m, &r, idx, cnt) + r.bias[0]);
    }
    if (m->gbm_weight > 0) {
        for (i = 0; i < c->n; i++) ll[i] = class_loglik(c, i, idx, cnt, work);
        log_softmax(score, c->n);
        log_softmax(ll, c->n);
        for (i = 0; i < c->n; i++) score[i] += m->gbm_weight * ll[i];
    }
    for (i = 1; i < c->n; i++) if (score[i] > score[best]) best = i;
    *out = best;
    return ECL_OK;
}

/* the input buffer's bytes at the arena's end (ecl_input_buffer) */
static size_t input_reserve(const ecl_ctx *c) {
    return align8((size_t)c->m->h * (size_t)c->m->w * (size_t)c->m->c);
}

/* the arena after the samples of a learning session; predict, embed and learn_add leave
 * the input buffer at its end alone, a commit (whole = 1) uses it too */
static ecl_bump arena_after_samples(const ecl_ctx *c, int whole) {
    ecl_bump b;
    size_t used = c->learning ? (size_t)c->n_add * (size_t)n_words(c->m->n_bits) * 8u : 0u;
    size_t end = c->arena_bytes & ~(size_t)7u, keep = whole ? 0u : input_reserve(c);
    b.p = c->arena + used;
    b.left = end >= used + keep ? end - used - keep : 0u;
    return b;
}
static ecl_bump free_arena(const ecl_ctx *c) { return arena_after_samples(c, 0); }

uint8_t *ecl_input_buffer(ecl_ctx *ctx) {
    size_t end;
    if (!ctx_ok(ctx)) return NULL;
    end = ctx->arena_bytes & ~(size_t)7u;
    return end >= input_reserve(ctx) ? ctx->arena + end - input_reserve(ctx) : NULL;
}

int ecl_predict(ecl_ctx *ctx, const uint8_t *image, int *class_index) {
    ecl_bump b;
    if (!ctx_ok(ctx) || !image || !class_index) return ECL_E_ARG;
    b = free_arena(ctx);
    return predict_on(ctx, &b, image, class_index);
}

int ecl_embed(ecl_ctx *ctx, const uint8_t *image, uint64_t *words) {
    ecl_bump b;
    if (!ctx_ok(ctx) || !image || !words) return ECL_E_ARG;
    b = free_arena(ctx);
    return embed_into(ctx->m, &b, image, words);
}

/* ---------------------------------------------------------------- learning session */

int ecl_learn_begin(ecl_ctx *ctx, const char *name) {
    size_t len;
    if (!ctx_ok(ctx) || !valid_name(name)) return ECL_E_ARG;
    if (ctx->learning) return ECL_E_SEQUENCE;
    ctx->upd = find_class(ctx, name); /* an existing name: update that class */
    len = strlen(name);
    if (ctx->upd < 0) { /* the pending name, in the name pool's tail (not yet a class) */
        if (ctx->names_used + len + 1 > ctx->m->name_pool) return ECL_E_CAPACITY;
        memcpy(ctx->names + ctx->names_used, name, len + 1);
    }
    ctx->learning = 1;
    ctx->n_add = 0;
    return ECL_OK;
}

int ecl_learn_add(ecl_ctx *ctx, const uint8_t *image) {
    ecl_bump b;
    size_t nwb;
    int rc;
    if (!ctx_ok(ctx) || !image) return ECL_E_ARG;
    if (!ctx->learning) return ECL_E_SEQUENCE;
    nwb = (size_t)n_words(ctx->m->n_bits) * 8u;
    b = free_arena(ctx);
    if (b.left < nwb || ctx->n_add >= 65535) return ECL_E_ARENA;
    b.p += nwb;
    b.left -= nwb;
    rc = embed_into(ctx->m, &b, image, (uint64_t *)(void *)(b.p - nwb));
    if (rc) return rc;
    ctx->n_add++;
    return ECL_OK;
}

void ecl_learn_abort(ecl_ctx *ctx) {
    if (ctx_ok(ctx)) { ctx->learning = 0; ctx->n_add = 0; }
}

/* ---------------------------------------------------------------- class memory (GBM) */

/* what a class memory looks like during a commit: the stored one, or its shrunk copy */
typedef struct { /* the ints first: 12 bytes, then 2 pointers (ECL__VIEW) */
    uint32_t count;
    int k, q;
    const uint64_t *words;
    const float *pi;
} ecl_view;

/* np_sum of float32 values read as float64 (the same pairwise rule, no float64 copy) */
static double pairwise_rest_f(const float *a, long n) {
    long i;
    if (n < 8) {
        double res = 0.0;
        for (i = 0; i < n; i++) res += (double)a[i];
        return res;
    }
    if (n <= 128) {
        double r[8], res;
        int j;
        for (j = 0; j < 8; j++) r[j] = (double)a[j];
        for (i = 8; i < n - (n % 8); i += 8)
            for (j = 0; j < 8; j++) r[j] += (double)a[i + j];
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += (double)a[i];
        return res;
    } else {
        long n2 = n / 2;
        n2 -= n2 % 8;
        return pairwise_rest_f(a, n2) + pairwise_rest_f(a + n2, n - n2);
    }
}

/* the component of draw m: the first k with u < cdf[k], cdf = cumsum(pi / pi.sum()) /
 * its last value (NumPy's Generator.choice), computed here rather than stored */
static int draw_comp(const ecl_view *v, uint64_t comp_seed, uint64_t m) {
    double u = u53(mix64(comp_seed + (m + 1u) * GOLDEN));
    double psum = (double)v->pi[0] + pairwise_rest_f(v->pi + 1, v->k - 1), s = 0.0, tot;
    int kk;
    for (kk = 0; kk < v->k; kk++) s += (double)v->pi[kk] / psum;
    tot = s;
    s = 0.0;
    for (kk = 0; kk < v->k; kk++) {
        s += (double)v->pi[kk] / psum;
        if (u < s / tot) return kk;
    }
    return v->k - 1;
}

/* pseudo-exemplar m: Bernoulli bits of component `comp` (edgecl.kernels.sampling's
 * SplitMix64 stream of row m: 16-bit uniforms against (2 level + 1) << (15 - q)) */
static void sample_row(const ecl_view *v, int comp, int n_bits, uint64_t seed, uint64_t m, uint64_t *out) {
    uint64_t state = mix64(seed + m * ROWMUL), rnd = 0;
    int j;
    memset(out, 0, (size_t)n_words(n_bits) * 8u);
    for (j = 0; j < n_bits; j++) {
        int lane = j & 3;
        uint32_t u, thr;
        if (lane == 0) rnd = mix64(state + (uint64_t)((j >> 2) + 1) * GOLDEN);
        u = (uint32_t)((rnd >> (16 * lane)) & 0xFFFFu);
        thr = (uint32_t)(2 * level_at(v->words, (long)comp * n_bits + j, v->q) + 1) << (15 - v->q);
        if (u < thr) out[j >> 6] |= (uint64_t)1 << (j & 63);
    }
}

static void pack_level(uint64_t *words, long e, int q, int level) {
    int b;
    for (b = 0; b < q; b++) {
        long pos = e * q + b;
        if ((level >> b) & 1) words[pos >> 6] |= (uint64_t)1 << (pos & 63);
    }
}

static int quantize_level(double mu, int q) {
    double f = floor(mu * (double)(1 << q));
    if (f < 0) f = 0;
    if (f > (double)((1 << q) - 1)) f = (double)((1 << q) - 1);
    return (int)f;
}

/* EM without a K x D table of prototypes: mu[k][j] = clip(S[k][j] / N_k), S the sum of
 * the responsibilities of the samples with bit j set, is recomputed from the last
 * responsibilities each component had while alive (the M-step of eq. 2, in the order the
 * Python EM sums), or, before its first M-step, from the initialisation's draws (ECL-RNG is
 * counter-based: the normal of (k, j) is the (k D + j)-th of its round). 2 N K + 2 D
 * float64 of working memory instead of K D + N K + D. */
typedef struct {
    const uint64_t *z;
    int n, k, D;
    double *a;    /* N x K: bit-select sums, then responsibilities */
    double *g;    /* N x K: each component's responsibilities of its last M-step */
    double *mu_row, *l1m_row; /* D */
    double *base, *nk, *nk_prev, *pi; /* K */
    uint8_t *fitted; /* K: 0 before the component's first M-step */
    uint64_t init_state; /* the stream at the initialisation of this run's round */
} ecl_em;

static double clip_mu(double mu) { return mu < MU_CLIP ? MU_CLIP : (mu > 1.0 - MU_CLIP ? 1.0 - MU_CLIP : mu); }

static double em_mu(const ecl_em *em, int kk, int j) {
    int nw = n_words(em->D), i;
    if (!em->fitted[kk]) { /* the paper's init: centroid + its std x N(0, 1) */
        ecl_rng r;
        int cnt = 0;
        double c, sd;
        for (i = 0; i < em->n; i++) cnt += set_bit(em->z + (size_t)i * nw, j);
        c = (double)cnt / (double)em->n;
        sd = sqrt(c * (1.0 - c));
        r.state = em->init_state + (uint64_t)(2 * ((long)kk * em->D + j)) * GOLDEN;
        return clip_mu(c + sd * rng_normal(&r));
    } else {
        double st = 0.0;
        for (i = 0; i < em->n; i++)
            if (set_bit(em->z + (size_t)i * nw, j)) st += em->g[(size_t)i * em->k + kk];
        return clip_mu(st / em->nk_prev[kk]);
    }
}

/* EM from the current state, at most `steps` M-steps (eqs. 1-3); returns the last eq. 3 */
static double em_run(ecl_em *em, int steps, double eps, int trainable_pi) {
    int D = em->D, n = em->n, k = em->k, nw = n_words(D), s, kk, j, i;
    double prev = 0.0, ell = 0.0;
    for (s = 0; s < steps; s++) {
        for (i = 0; i < n * k; i++) em->a[i] = 0.0;
        for (kk = 0; kk < k; kk++) {
            for (j = 0; j < D; j++) {
                em->mu_row[j] = em_mu(em, kk, j);
                em->l1m_row[j] = log1p(-em->mu_row[j]);
            }
            em->base[kk] = log(em->pi[kk]) + np_sum(em->l1m_row, D);
            for (j = 0; j < D; j++) {
                double l = log(em->mu_row[j]) - em->l1m_row[j];
                for (i = 0; i < n; i++)
                    if (set_bit(em->z + (size_t)i * nw, j)) em->a[(size_t)i * k + kk] += l;
            }
        }
        ell = 0.0;
        for (kk = 0; kk < k; kk++) em->nk[kk] = 0.0;
        for (i = 0; i < n; i++) {
            double *ai = em->a + (size_t)i * k, top = -INFINITY, sum = 0.0, inv;
            for (kk = 0; kk < k; kk++) {
                ai[kk] += em->base[kk];
                if (ai[kk] > top) top = ai[kk];
            }
            for (kk = 0; kk < k; kk++) {
                double diff = ai[kk] - top, e = diff > -700.0 ? exp(diff) : 0.0;
                em->mu_row[kk] = ai[kk];
                ai[kk] = e;
                sum += e;
            }
            inv = 1.0 / sum;
            for (kk = 0; kk < k; kk++) {
                double g = ai[kk] * inv;
                if (g > 0.0) ell += g * em->mu_row[kk];
                ai[kk] = g;
                em->nk[kk] += g;
            }
        }
        for (kk = 0; kk < k; kk++) { /* M-step: a component with N_k = 0 keeps its mu */
            if (!(em->nk[kk] > 0.0)) continue;
            for (i = 0; i < n; i++) em->g[(size_t)i * k + kk] = em->a[(size_t)i * k + kk];
            em->nk_prev[kk] = em->nk[kk];
            em->fitted[kk] = 1;
        }
        if (trainable_pi)
            for (kk = 0; kk < k; kk++) em->pi[kk] = em->nk[kk] / (double)n;
        if (eps > 0 && s >= 1 && fabs(ell - prev) < eps * fabs(ell)) break;
        prev = ell;
    }
    return ell;
}

/* a warm-up round's start: the stream's position, K x D normals drawn (row-major) */
static void em_init(ecl_em *em, ecl_rng *r) {
    int kk;
    em->init_state = r->state;
    r->state += (uint64_t)(2 * (long)em->k * em->D) * GOLDEN;
    for (kk = 0; kk < em->k; kk++) {
        em->pi[kk] = 1.0 / (double)em->k;
        em->fitted[kk] = 0;
    }
}

/* fit K prototypes at q bits to z (the paper's schedule, GBM §3.1) into words/pi */
static int em_fit(const ecl_model *m, ecl_bump b, const uint64_t *z, int n, int k, int q,
                  ecl_rng *r, uint64_t *words, float *pi) {
    ecl_em em;
    ecl_rng best_state = *r;
    double best = -INFINITY;
    int round, kk, j, D = m->n_bits;
    em.z = z;
    em.n = n;
    em.k = k;
    em.D = D;
    em.a = (double *)bump(&b, (size_t)n * k * 8u);
    em.g = (double *)bump(&b, (size_t)n * k * 8u);
    em.mu_row = (double *)bump(&b, (size_t)(D > k ? D : k) * 8u);
    em.l1m_row = (double *)bump(&b, (size_t)D * 8u);
    em.base = (double *)bump(&b, (size_t)k * 8u);
    em.nk = (double *)bump(&b, (size_t)k * 8u);
    em.nk_prev = (double *)bump(&b, (size_t)k * 8u);
    em.pi = (double *)bump(&b, (size_t)k * 8u);
    em.fitted = (uint8_t *)bump(&b, (size_t)k);
    if (!em.a || !em.g || !em.mu_row || !em.l1m_row || !em.base || !em.nk || !em.nk_prev ||
        !em.pi || !em.fitted)
        return ECL_E_ARENA;
    for (round = 0; round < m->n_init; round++) {
        ecl_rng at = *r;
        double ell;
        em_init(&em, r);
        ell = em_run(&em, m->n_iter, 0.0, m->trainable_pi);
        if (round == 0 || ell > best) { best = ell; best_state = at; }
    }
    /* the best warm-up round again, from its saved stream, then to the stop rule */
    em_init(&em, &best_state);
    em_run(&em, m->n_iter, 0.0, m->trainable_pi);
    em_run(&em, m->n_max, m->epsilon, m->trainable_pi);
    memset(words, 0, words_bytes(m, k, q));
    for (kk = 0; kk < k; kk++) {
        for (j = 0; j < D; j++)
            pack_level(words, (long)kk * D + j, q, quantize_level(em_mu(&em, kk, j), q));
        pi[kk] = (float)em.pi[kk];
    }
    return ECL_OK;
}

/* ---------------------------------------------------------------- budget plan */

static int smaller(int *k, int *q) {
    if (*q == 32) { *q = 8; return 1; }
    if (*q > 4) { *q = 4; return 1; }
    if (*k > 1) { *k /= 2; return 1; }
    if (*q > 1) { (*q)--; return 1; }
    return 0;
}

/* edgecl.memory.plan_class_addition: sizes[i] (k, q) of the stored classes, then the new one */
static int plan(const ecl_ctx *c, int *ks, int *qs) {
    const ecl_model *m = c->m;
    int n = c->n, i;
    size_t other = (size_t)n * head_class_bytes(m), extra = head_class_bytes(m), total = 0;
    for (i = 0; i < n; i++) {
        ks[i] = c->cls[i].k;
        qs[i] = c->cls[i].q;
        total += class_mem_bytes(m, ks[i], qs[i]);
    }
    ks[n] = m->cfg_k;
    qs[n] = m->cfg_q;
    total += class_mem_bytes(m, ks[n], qs[n]) + other + extra;
    if (m->budget_bytes == 0 || total <= m->budget_bytes) return ECL_OK;
    if (m->policy == 0) return ECL_E_BUDGET;
    while (total > m->budget_bytes) {
        int pick = -1;
        size_t pick_bytes = 0;
        for (i = 0; i <= n; i++) { /* the largest first, the oldest among equals */
            int k = ks[i], q = qs[i];
            size_t bytes = class_mem_bytes(m, k, q);
            if (smaller(&k, &q) && (pick < 0 || bytes > pick_bytes)) { pick = i; pick_bytes = bytes; }
        }
        if (pick < 0) return ECL_E_BUDGET;
        total -= class_mem_bytes(m, ks[pick], qs[pick]);
        smaller(&ks[pick], &qs[pick]);
        total += class_mem_bytes(m, ks[pick], qs[pick]);
    }
    return ECL_OK;
}

/* ---------------------------------------------------------------- head training (eq. 4) */

static void eq4_counts(int batch, int n, int step, int *counts) {
    int base = batch / n, rem = batch % n, start = (int)(((long)step * rem) % n), t;
    for (t = 0; t < n; t++) counts[t] = base;
    for (t = 0; t < rem; t++) counts[(start + t) % n]++;
}

typedef struct {
    const ecl_model *m;
    ecl_view *views; /* the stored classes, head order */
    int n_old, n_cls, batch, per_epoch, steps, m_new;
    const uint64_t *z_new;
    uint64_t comp_seed, kernel_seed;
    long *offsets, *used; /* per old class: first global draw, draws used */
    uint16_t *perm;
    int perm_pos, perm_pass, new_target;
    int upd; /* the class an update refits (not an old class of the batches), else -1 */
    int *counts; /* (n_cls,) the eq. 4 counts of a step */
    ecl_rng *rng;
} ecl_batches;

/* the class index of old class i (the stored classes but the one an update refits) */
static int old_class(const ecl_batches *bt, int i) { return bt->upd >= 0 && i >= bt->upd ? i + 1 : i; }

static void next_perm(ecl_batches *bt) {
    int i;
    for (i = 0; i < bt->m_new; i++) bt->perm[i] = (uint16_t)i;
    for (i = bt->m_new - 1; i >= 1; i--) {
        uint32_t j = rng_below(bt->rng, (uint32_t)i + 1u);
        uint16_t t = bt->perm[i];
        bt->perm[i] = bt->perm[j];
        bt->perm[j] = t;
    }
    bt->perm_pos = 0;
}

/* the words of batch entry e (>= 0: new sample e; < 0: pseudo-exemplar -e - 1 of `cls`) */
static const uint64_t *entry_words(const ecl_batches *bt, int32_t e, int cls, uint64_t *tmp) {
    const ecl_view *v;
    if (e >= 0) return bt->z_new + (size_t)e * n_words(bt->m->n_bits);
    v = &bt->views[cls];
    sample_row(v, draw_comp(v, bt->comp_seed, (uint64_t)(-e - 1)), bt->m->n_bits, bt->kernel_seed,
               (uint64_t)(-e - 1), tmp);
    return tmp;
}

/* rows[c]: class c's float32 head row (D values); the rows live partly in the pool's
 * unused tail and partly in the arena (ecl_learn_commit) */
static int train_head(ecl_batches *bt, ecl_bump b, float *const *rows, float *bias) {
    const ecl_model *m = bt->m;
    int D = m->n_bits, nw = n_words(D), C = bt->n_cls, B = bt->batch, s, t, i, c, j;
    /* the arena of a step (ECL__TRAIN): entries, targets, G, 4 rows of bits, the logits */
    int32_t *entry = (int32_t *)bump(&b, (size_t)B * 4u);
    uint16_t *target = (uint16_t *)bump(&b, (size_t)B * 2u);
    float *g = (float *)bump(&b, (size_t)B * C * 4u);
    uint64_t *tmp = (uint64_t *)bump(&b, (size_t)4 * nw * 8u);
    double *e = (double *)bump(&b, (size_t)C * 8u);
    float *acc = (float *)bump(&b, (size_t)C * 4u);
    int *counts = bt->counts;
    float lr32 = (float)m->lr, keep = 1.0f - lr32 * (float)m->weight_decay;
    if (!entry || !target || !g || !tmp || !e || !acc) return ECL_E_ARENA;
    for (s = 0; s < bt->steps; s++) {
        int nb = 0, b4;
        eq4_counts(B, C, s % bt->per_epoch, counts);
        for (t = 0; t < counts[0]; t++) { /* the new class first, then the old in order */
            if (bt->perm_pos >= bt->m_new) next_perm(bt);
            entry[nb] = bt->perm[bt->perm_pos++];
            target[nb++] = (uint16_t)bt->new_target;
        }
        for (i = 0; i < bt->n_old; i++)
            for (t = 0; t < counts[1 + i]; t++) {
                entry[nb] = (int32_t)(-(bt->offsets[i] + bt->used[i]++) - 1);
                target[nb++] = (uint16_t)old_class(bt, i);
            }
        for (i = 0; i < nb; i++) { /* z = W x + b, G = (softmax(z) - onehot) / B */
            const uint64_t *x = entry_words(bt, entry[i], target[i], tmp);
            double mx = -INFINITY, tot = 0.0;
            int k;
            /* each class's float32 sum of its row at the set bits, lowest first */
            for (c = 0; c < C; c++) acc[c] = 0.0f;
            for (k = 0; k < nw; k++) {
                uint64_t bits = x[k];
                while (bits) {
                    uint64_t low = bits & (~bits + 1u);
                    int jj = k * 64 + popcount64(low - 1u);
                    for (c = 0; c < C; c++) acc[c] += rows[c][jj];
                    bits ^= low;
                }
            }
            for (c = 0; c < C; c++) {
                e[c] = (double)(acc[c] + bias[c]);
                if (e[c] > mx) mx = e[c];
            }
            for (c = 0; c < C; c++) { e[c] = exp(e[c] - mx); tot += e[c]; }
            for (c = 0; c < C; c++)
                g[(size_t)i * C + c] = (float)((e[c] / tot - (c == target[i] ? 1.0 : 0.0)) / (double)nb);
        }
        for (c = 0; c < C; c++)
            for (j = 0; j < D; j++) rows[c][j] = rows[c][j] * keep;
        b4 = nb - nb % 4;
        for (i = 0; i < nb; i++) {
            int g0 = i - i % 4, slot = i % 4;
            const uint64_t *x = entry_words(bt, entry[i], target[i], tmp + (size_t)slot * nw);
            if (x != tmp + (size_t)slot * nw) memcpy(tmp + (size_t)slot * nw, x, (size_t)nw * 8u);
            if (i < b4 && slot == 3) { /* a group of 4: (a0 y0 + a1 y1) + (a2 y2 + a3 y3) */
                for (c = 0; c < C; c++) {
                    float a0 = lr32 * g[(size_t)g0 * C + c], a1 = lr32 * g[(size_t)(g0 + 1) * C + c];
                    float a2 = lr32 * g[(size_t)(g0 + 2) * C + c], a3 = lr32 * g[(size_t)(g0 + 3) * C + c];
                    float *row = rows[c];
                    for (j = 0; j < D; j++) {
                        float y0 = (float)set_bit(tmp, j), y1 = (float)set_bit(tmp + nw, j);
                        float y2 = (float)set_bit(tmp + 2 * nw, j), y3 = (float)set_bit(tmp + 3 * nw, j);
                        float p = a0 * y0 + a1 * y1, q = a2 * y2 + a3 * y3;
                        row[j] -= p + q;
                    }
                }
            } else if (i >= b4) {
                for (c = 0; c < C; c++) {
                    float a0 = lr32 * g[(size_t)i * C + c], *row = rows[c];
                    for (j = 0; j < D; j++) row[j] -= a0 * (float)set_bit(tmp + (size_t)slot * nw, j);
                }
            }
        }
        for (c = 0; c < C; c++) {
            float db = 0.0f;
            for (i = 0; i < nb; i++) db += g[(size_t)i * C + c];
            bias[c] = bias[c] - lr32 * db;
        }
    }
    for (c = 0; c < C; c++)
        for (j = 0; j < D; j++) if (!isfinite(rows[c][j])) return ECL_E_NUMERIC;
    for (c = 0; c < C; c++) if (!isfinite(bias[c])) return ECL_E_NUMERIC;
    return ECL_OK;
}

/* the float row as stored (encode_head): in place, hb bytes per value; returns the scale */
static float round_row(const ecl_model *m, float *row) {
    int D = m->n_bits, j;
    float peak = 0.0f, scale = 1.0f;
    uint8_t *out = (uint8_t *)(void *)row;
    if (m->head_bits == 32) return 1.0f;
    if (m->head_bits == 16) {
        for (j = 0; j < D; j++) { uint16_t h = float_to_half(row[j]); memcpy(out + 2 * j, &h, 2); }
        return 1.0f;
    }
    for (j = 0; j < D; j++) if (fabsf(row[j]) > peak) peak = fabsf(row[j]);
    if (peak > 0) scale = peak / 127.0f;
    for (j = 0; j < D; j++) {
        float v = rintf(row[j] / scale);
        int8_t q = (int8_t)(v > 127.0f ? 127 : (v < -127.0f ? -127 : (int)v));
        out[j] = (uint8_t)q;
    }
    return scale;
}

/* ---------------------------------------------------------------- commit */

int ecl_learn_commit(ecl_ctx *ctx, uint64_t seed) {
    const ecl_model *m;
    ecl_bump b;
    ecl_rng rng, em_rng;
    ecl_batches bt;
    memset(&bt, 0, sizeof bt);
    ecl_view *views;
    int *ks, *qs, n, i, c, rc, D, nw, total_new = 0, passes, upd, C, kk_new, q_new;
    uint64_t *new_words;
    float *new_pi, **rows, *bias, *scales;
    size_t hb, new_pool = 0, tail_at;
    int in_pool;
    if (!ctx_ok(ctx)) return ECL_E_ARG;
    if (!ctx->learning) return ECL_E_SEQUENCE;
    m = ctx->m;
    n = ctx->n;
    upd = ctx->upd;
    C = upd >= 0 ? n : n + 1; /* the head's classes after the call */
    D = m->n_bits;
    nw = n_words(D);
    hb = (size_t)m->head_bits / 8u;
    if (upd < 0 && n + 1 > m->max_classes) return ECL_E_CAPACITY;
    b = arena_after_samples(ctx, 1);
    ks = (int *)bump(&b, (size_t)(n + 1) * sizeof(int));
    qs = (int *)bump(&b, (size_t)(n + 1) * sizeof(int));
    views = (ecl_view *)bump(&b, (size_t)(n + 1) * sizeof(ecl_view));
    if (!ks || !qs || !views) return ECL_E_ARENA;
    if (upd >= 0) { /* an update refits the class at its size: the stored bytes stay */
        for (i = 0; i < n; i++) { ks[i] = ctx->cls[i].k; qs[i] = ctx->cls[i].q; }
        ks[n] = ks[upd];
        qs[n] = qs[upd];
    } else {
        rc = plan(ctx, ks, qs);
        if (rc) return rc;
        if (ctx->n_add < ks[n]) return ECL_E_SAMPLES;
    }
    kk_new = ks[n];
    q_new = qs[n];
    rng.state = seed;
    /* 1. the plan's shrinks, on copies in the arena */
    for (i = 0; i < n; i++) {
        ecl_rec r = class_rec(ctx, i);
        views[i].words = r.words;
        views[i].pi = r.pi;
        views[i].k = ctx->cls[i].k;
        views[i].q = ctx->cls[i].q;
        views[i].count = rec_count(&r);
        new_pool += record_bytes(m, ks[i], qs[i]);
    }
    if (upd < 0) new_pool += record_bytes(m, ks[n], qs[n]);
    if (new_pool > m->pool_bytes) return ECL_E_CAPACITY;
    for (i = 0; i < n; i++) {
        uint64_t *nwds;
        float *npi;
        int j, kk;
        if (ks[i] == views[i].k && qs[i] == views[i].q) continue;
        nwds = (uint64_t *)bump(&b, words_bytes(m, ks[i], qs[i]));
        npi = (float *)bump(&b, (size_t)ks[i] * 4u);
        if (!nwds || !npi) return ECL_E_ARENA;
        if (ks[i] == views[i].k) { /* fewer bits: requantise the dequantised prototypes */
            memset(nwds, 0, words_bytes(m, ks[i], qs[i]));
            for (kk = 0; kk < ks[i]; kk++)
                for (j = 0; j < D; j++) {
                    long e = (long)kk * D + j;
                    double mu = ((double)level_at(views[i].words, e, views[i].q) + 0.5) / (double)(1 << views[i].q);
                    pack_level(nwds, e, qs[i], quantize_level(mu, qs[i]));
                }
            memcpy(npi, views[i].pi, (size_t)ks[i] * 4u);
        } else { /* fewer components: refit on draws from the current mixture */
            ecl_bump sb = b;
            uint32_t cnt = views[i].count, t;
            uint64_t cs, kseed, *zs;
            if ((uint32_t)ks[i] > cnt) return ECL_E_SAMPLES;
            zs = (uint64_t *)bump(&sb, (size_t)cnt * nw * 8u);
            if (!zs) return ECL_E_ARENA;
            cs = rng_next(&rng);
            kseed = rng_next(&rng) >> 1;
            for (t = 0; t < cnt; t++)
                sample_row(&views[i], draw_comp(&views[i], cs, t), D, kseed, t, zs + (size_t)t * nw);
            rc = em_fit(m, sb, zs, (int)cnt, ks[i], qs[i], &rng, nwds, npi);
            if (rc) return rc;
        }
        views[i].words = nwds;
        views[i].pi = npi;
        views[i].k = ks[i];
        views[i].q = qs[i];
    }
    /* 2. the eq. 4 schedule (its draws come first on the stream: skipped for the EM) */
    bt.m = m;
    bt.views = views;
    bt.n_old = upd >= 0 ? n - 1 : n;
    bt.upd = upd;
    bt.new_target = upd >= 0 ? upd : n;
    bt.n_cls = C;
    bt.batch = m->batch_size > C ? m->batch_size : C;
    bt.m_new = ctx->n_add;
    {
        int share = bt.batch / C > 1 ? bt.batch / C : 1, s;
        int *cnts = (int *)bump(&b, (size_t)(n + 1) * sizeof(int));
        bt.offsets = (long *)bump(&b, (size_t)(n + 1) * sizeof(long));
        bt.used = (long *)bump(&b, (size_t)(n + 1) * sizeof(long));
        if (!cnts || !bt.offsets || !bt.used) return ECL_E_ARENA;
        bt.counts = cnts;
        bt.per_epoch = (bt.m_new + share - 1) / share;
        bt.steps = bt.per_epoch * m->epochs;
        for (i = 0; i <= n; i++) { bt.offsets[i] = 0; bt.used[i] = 0; }
        for (s = 0; s < bt.steps; s++) {
            eq4_counts(bt.batch, C, s % bt.per_epoch, cnts);
            total_new += cnts[0];
        }
        { /* running sum: offsets[i] = sum of totals of old classes 0..i-1 */
            long acc = 0, tot_i;
            long *tot = bt.used; /* reuse as scratch */
            for (i = 0; i < n; i++) tot[i] = 0;
            for (s = 0; s < bt.steps; s++) {
                eq4_counts(bt.batch, C, s % bt.per_epoch, cnts);
                for (i = 0; i < bt.n_old; i++) tot[i] += cnts[1 + i];
            }
            for (i = 0; i < bt.n_old; i++) { tot_i = tot[i]; bt.offsets[i] = acc; acc += tot_i; tot[i] = 0; }
        }
    }
    passes = (total_new + bt.m_new - 1) / bt.m_new;
    em_rng.state = rng.state + (uint64_t)((bt.n_old > 0 ? 2 : 0) + (long)passes * (bt.m_new - 1)) * GOLDEN;
    /* 3. the class's memory (EM, eqs. 1-3, then q bits); an update refits on draws from
     * its current mixture (as many as its count) followed by the new samples */
    if (upd < 0 && ctx->pool_used + record_bytes(m, kk_new, q_new) <= m->pool_bytes) {
        /* a new class's prototypes go straight to its record's place in the pool's unused
         * tail (always there when nothing shrinks; nothing counts it until the commit) */
        ecl_rec tail = rec_at(m, ctx->pool + ctx->pool_used, kk_new, q_new);
        new_words = tail.words;
        new_pi = tail.pi;
    } else {
        new_words = (uint64_t *)bump(&b, words_bytes(m, kk_new, q_new));
        new_pi = (float *)bump(&b, (size_t)kk_new * 4u);
        if (!new_words || !new_pi) return ECL_E_ARENA;
    }
    if (upd < 0) {
        rc = em_fit(m, b, (const uint64_t *)(void *)ctx->arena, ctx->n_add, kk_new, q_new, &em_rng,
                    new_words, new_pi);
    } else {
        ecl_bump sb = b;
        uint32_t cnt = views[upd].count, t;
        uint64_t cs, kseed, *zs = (uint64_t *)bump(&sb, ((size_t)cnt + (size_t)ctx->n_add) * nw * 8u);
        if (!zs) return ECL_E_ARENA;
        cs = rng_next(&em_rng);
        kseed = rng_next(&em_rng) >> 1;
        for (t = 0; t < cnt; t++)
            sample_row(&views[upd], draw_comp(&views[upd], cs, t), D, kseed, t, zs + (size_t)t * nw);
        memcpy(zs + (size_t)cnt * nw, ctx->arena, (size_t)ctx->n_add * nw * 8u);
        rc = em_fit(m, sb, zs, (int)cnt + ctx->n_add, kk_new, q_new, &em_rng, new_words, new_pi);
    }
    if (rc) return rc;
    /* 4. the head, retrained on the new samples and pseudo-exemplars (GBM §3.2): its
     * float32 copy fills the pool's unused tail first, after both the stored records (and
     * the new class's prototypes when they wait there) and the rebuilt pool of step 5,
     * which copies the rows out before anything counts those bytes; the remaining rows go
     * to the arena (ECL__HEAD in edgecl.h sizes it for the fullest pool of C classes) */
    tail_at = ctx->pool_used;
    if (new_words == (uint64_t *)(void *)(ctx->pool + ctx->pool_used))
        tail_at += record_bytes(m, kk_new, q_new);
    tail_at = align8(tail_at > new_pool ? tail_at : new_pool);
    in_pool = tail_at < m->pool_bytes ? (int)((m->pool_bytes - tail_at) / ((size_t)D * 4u)) : 0;
    if (in_pool > C) in_pool = C;
    rows = (float **)bump(&b, (size_t)C * sizeof(float *));
    if (!rows) return ECL_E_ARENA;
    for (c = 0; c < C; c++) {
        rows[c] = c < in_pool ? (float *)(void *)(ctx->pool + tail_at + (size_t)c * D * 4u)
                              : (float *)bump(&b, (size_t)D * 4u);
        if (!rows[c]) return ECL_E_ARENA;
    }
    bias = (float *)bump(&b, (size_t)(n + 1) * 4u);
    bt.perm = (uint16_t *)bump(&b, (size_t)bt.m_new * 2u);
    if (!bias || !bt.perm) return ECL_E_ARENA;
    for (c = 0; c < n; c++) {
        ecl_rec r = class_rec(ctx, c);
        int j;
        for (j = 0; j < D; j++) rows[c][j] = head_value(m, &r, j);
        bias[c] = r.bias[0];
    }
    if (upd < 0) {
        memset(rows[n], 0, (size_t)D * 4u);
        bias[n] = 0.0f;
    }
    bt.rng = &rng;
    bt.z_new = (const uint64_t *)(void *)ctx->arena;
    if (bt.n_old > 0) { bt.comp_seed = rng_next(&rng); bt.kernel_seed = rng_next(&rng) >> 1; }
    bt.perm_pos = bt.m_new;
    bt.perm_pass = 0;
    rc = train_head(&bt, b, rows, bias);
    if (rc) return rc;
    scales = (float *)bump(&b, (size_t)(n + 1) * 4u); /* in the training's scratch, now free */
    if (!scales) return ECL_E_ARENA;
    for (c = 0; c < C; c++) scales[c] = round_row(m, rows[c]);
    /* 5. commit: rebuild the pool in place (records only shrink), append the new class */
    {
        size_t off = 0;
        for (i = 0; i < n; i++) {
            ecl_rec old = class_rec(ctx, i), nr;
            uint32_t count = rec_count(&old);
            nr = rec_at(m, ctx->pool + off, ks[i], qs[i]);
            if (i == upd) {
                views[i].words = new_words;
                views[i].pi = new_pi;
                count += (uint32_t)ctx->n_add;
            }
            memmove(nr.words, views[i].words, words_bytes(m, ks[i], qs[i]));
            memmove(nr.pi, views[i].pi, (size_t)ks[i] * 4u);
            memcpy(nr.head, rows[i], (size_t)D * hb);
            if (nr.scale) nr.scale[0] = scales[i];
            nr.bias[0] = bias[i];
            memcpy(nr.count, &count, 4);
            ctx->cls[i].off = (uint32_t)off;
            ctx->cls[i].k = (uint16_t)ks[i];
            ctx->cls[i].q = (uint16_t)qs[i];
            off += record_bytes(m, ks[i], qs[i]);
        }
        if (upd < 0) {
            ecl_rec nr = rec_at(m, ctx->pool + off, ks[n], qs[n]);
            uint32_t count = (uint32_t)ctx->n_add;
            size_t len = strlen(ctx->names + ctx->names_used); /* the pending name */
            /* words, then pi: from the pool's tail they move down (or stay) */
            memmove(nr.words, new_words, words_bytes(m, ks[n], qs[n]));
            memmove(nr.pi, new_pi, (size_t)ks[n] * 4u);
            memcpy(nr.head, rows[n], (size_t)D * hb);
            if (nr.scale) nr.scale[0] = scales[n];
            nr.bias[0] = bias[n];
            memcpy(nr.count, &count, 4);
            ctx->cls[n].off = (uint32_t)off;
            ctx->cls[n].k = (uint16_t)ks[n];
            ctx->cls[n].q = (uint16_t)qs[n];
            ctx->cls[n].name_off = (uint32_t)ctx->names_used;
            ctx->names_used += len + 1;
            off += record_bytes(m, ks[n], qs[n]);
        }
        ctx->pool_used = off;
        ctx->n = C;
    }
    ctx->learning = 0;
    ctx->n_add = 0;
    return ECL_OK;
}

/* ---------------------------------------------------------------- forget, state, errors */

int ecl_forget_class(ecl_ctx *ctx, const char *name) {
    int i, j;
    size_t rb, nlen, noff;
    if (!ctx_ok(ctx) || !valid_name(name)) return ECL_E_ARG;
    if (ctx->learning) return ECL_E_SEQUENCE;
    i = find_class(ctx, name);
    if (i < 0) return ECL_E_UNKNOWN;
    if (ctx->n == 1) return ECL_E_LAST_CLASS;
    rb = record_bytes(ctx->m, ctx->cls[i].k, ctx->cls[i].q);
    noff = ctx->cls[i].name_off;
    nlen = strlen(ctx->names + noff) + 1;
    memmove(ctx->pool + ctx->cls[i].off, ctx->pool + ctx->cls[i].off + rb,
            ctx->pool_used - ctx->cls[i].off - rb);
    memmove(ctx->names + noff, ctx->names + noff + nlen, ctx->names_used - noff - nlen);
    for (j = i; j + 1 < ctx->n; j++) ctx->cls[j] = ctx->cls[j + 1];
    ctx->n--;
    for (j = 0; j < ctx->n; j++) {
        if (j >= i) ctx->cls[j].off -= (uint32_t)rb;
        if (ctx->cls[j].name_off > noff) ctx->cls[j].name_off -= (uint32_t)nlen;
    }
    ctx->pool_used -= rb;
    ctx->names_used -= nlen;
    return ECL_OK;
}

/* state bytes: "ECLS" | u32 version 1 | u32 model_id | u32 n | per class: u8 name_len,
 * name, u16 k, u16 q | u32 pool_used | the pool (records, in order) | u32 CRC-32 of all before */
static void put32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24); }

int ecl_state_save(const ecl_ctx *ctx, void *out, size_t cap, size_t *written) {
    size_t need = 16, pos;
    uint8_t *o = (uint8_t *)out;
    int i;
    if (!ctx_ok(ctx) || !written || (!out && cap)) return ECL_E_ARG;
    for (i = 0; i < ctx->n; i++) need += 1 + strlen(ctx->names + ctx->cls[i].name_off) + 4;
    need += 4 + ctx->pool_used + 4;
    *written = need;
    if (cap < need) return ECL_E_STATE_SMALL;
    memcpy(o, "ECLS", 4);
    put32(o + 4, 1);
    put32(o + 8, ctx->m->model_id);
    put32(o + 12, (uint32_t)ctx->n);
    pos = 16;
    for (i = 0; i < ctx->n; i++) {
        const char *nm = ctx->names + ctx->cls[i].name_off;
        size_t len = strlen(nm);
        o[pos++] = (uint8_t)len;
        memcpy(o + pos, nm, len);
        pos += len;
        o[pos++] = (uint8_t)ctx->cls[i].k;
        o[pos++] = (uint8_t)(ctx->cls[i].k >> 8);
        o[pos++] = (uint8_t)ctx->cls[i].q;
        o[pos++] = (uint8_t)(ctx->cls[i].q >> 8);
    }
    put32(o + pos, (uint32_t)ctx->pool_used);
    pos += 4;
    memcpy(o + pos, ctx->pool, ctx->pool_used);
    pos += ctx->pool_used;
    put32(o + pos, crc32_update(0, o, pos));
    return ECL_OK;
}

/* parse (and with apply, write into ctx) state bytes; every read is bounds-checked */
static int state_parse(ecl_ctx *ctx, const uint8_t *p, size_t n, int apply) {
    const ecl_model *m = ctx->m;
    size_t pos = 16, names = 0, pool = 0, pool_used;
    uint32_t count, i;
    if (n < 24 || memcmp(p, "ECLS", 4) != 0 || get32(p + 4) != 1 || get32(p + 8) != m->model_id)
        return ECL_E_STATE;
    if (crc32_update(0, p, n - 4) != get32(p + n - 4)) return ECL_E_STATE;
    count = get32(p + 12);
    if (count < 1 || count > (uint32_t)m->max_classes) return ECL_E_STATE;
    for (i = 0; i < count; i++) {
        size_t len;
        int k, q, j;
        if (pos + 1 > n - 4) return ECL_E_STATE;
        len = p[pos++];
        if (len < 1 || len > ECL_NAME_MAX || pos + len + 4 > n - 4) return ECL_E_STATE;
        for (j = 0; j < (int)len; j++)
            if (p[pos + j] < 0x20 || p[pos + j] == 0x7F) return ECL_E_STATE;
        k = p[pos + len] | (p[pos + len + 1] << 8);
        q = p[pos + len + 2] | (p[pos + len + 3] << 8);
        if (k < 1 || k > 4096 || q < 1 || q > 8) return ECL_E_STATE;
        if (names + len + 1 > m->name_pool) return ECL_E_STATE;
        if (apply) {
            memcpy(ctx->names + names, p + pos, len);
            ctx->names[names + len] = 0;
            ctx->cls[i].name_off = (uint32_t)names;
            ctx->cls[i].off = (uint32_t)pool;
            ctx->cls[i].k = (uint16_t)k;
            ctx->cls[i].q = (uint16_t)q;
        }
        names += len + 1;
        pool += record_bytes(m, k, q);
        pos += len + 4;
    }
    if (pos + 4 > n - 4) return ECL_E_STATE;
    pool_used = get32(p + pos);
    pos += 4;
    if (pool_used != pool || pool > m->pool_bytes || pos + pool != n - 4) return ECL_E_STATE;
    if (apply) {
        memcpy(ctx->pool, p + pos, pool);
        ctx->n = (int)count;
        ctx->pool_used = pool;
        ctx->names_used = names;
    }
    return ECL_OK;
}

int ecl_state_load(ecl_ctx *ctx, const void *in, size_t n) {
    int rc;
    size_t stored = 0;
    if (!ctx_ok(ctx) || !in) return ECL_E_ARG;
    if (ctx->learning) return ECL_E_SEQUENCE;
    rc = state_parse(ctx, (const uint8_t *)in, n, 0);
    if (rc) return rc;
    /* the stored bytes must fit the budget, and duplicate names are refused */
    {
        const uint8_t *p = (const uint8_t *)in;
        size_t pos = 16, a, bpos;
        uint32_t cnt = get32(p + 12), x, y;
        for (x = 0; x < cnt; x++) {
            size_t len = p[pos];
            int k = p[pos + 1 + len] | (p[pos + 2 + len] << 8), q = p[pos + 3 + len] | (p[pos + 4 + len] << 8);
            stored += class_mem_bytes(ctx->m, k, q) + head_class_bytes(ctx->m);
            bpos = 16;
            for (y = 0; y < x; y++) {
                size_t l2 = p[bpos];
                if (l2 == len && memcmp(p + bpos + 1, p + pos + 1, len) == 0) return ECL_E_STATE;
                bpos += 1 + l2 + 4;
            }
            a = pos;
            pos = a + 1 + len + 4;
        }
    }
    if (ctx->m->budget_bytes && stored > ctx->m->budget_bytes) return ECL_E_STATE;
    return state_parse(ctx, (const uint8_t *)in, n, 1);
}

const char *ecl_strerror(int code) {
    switch (code) {
    case ECL_OK: return "ok";
    case ECL_E_ARG: return "bad argument";
    case ECL_E_CTX_SMALL: return "context memory smaller than ECL_CTX_BYTES";
    case ECL_E_ARENA: return "arena too small for this call";
    case ECL_E_BUDGET: return "the class does not fit in the memory budget";
    case ECL_E_EXISTS: return "a class of that name is already learned";
    case ECL_E_UNKNOWN: return "no class of that name";
    case ECL_E_STATE: return "state bytes truncated, corrupt or from another model";
    case ECL_E_STATE_SMALL: return "output buffer too small for the state";
    case ECL_E_SEQUENCE: return "learn_add/commit without learn_begin, or a call during learning";
    case ECL_E_SAMPLES: return "too few samples for the class's prototypes";
    case ECL_E_NUMERIC: return "the head diverged (NaN or inf); learning rate too high";
    case ECL_E_CAPACITY: return "no room for another class (class table or name pool full)";
    case ECL_E_LAST_CLASS: return "the last class cannot be forgotten";
    default: return "unknown error";
    }
}

/* the context header fits the bytes edgecl export-c reserves for it (CTX_HEADER) */
typedef char ecl_ctx_header_fits[sizeof(struct ecl_ctx) <= 128 ? 1 : -1];
/* ... and the class table the bytes it reserves per class (CLS_BYTES) */
typedef char ecl_cls_fits[sizeof(ecl_cls) <= 12 ? 1 : -1];
/* ... and the arena bound of edgecl.h the commit's views (ECL__VIEW) */
typedef char ecl_view_fits[sizeof(ecl_view) <= ECL__VIEW ? 1 : -1];

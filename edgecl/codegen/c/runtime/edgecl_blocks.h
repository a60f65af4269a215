/* edgecl_blocks.h - what edgecl_model.c (generated) and edgecl.c (the runtime) share:
 * the model descriptor and the fused blocks the generated layer program calls.
 * Not part of the public API. */
#ifndef EDGECL_BLOCKS_H
#define EDGECL_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

/* conv2d_float -> threshold_float (repeat 1) [-> maxpool_bits]: float64 sums of the
 * float32 products, taps in (di, dj, c) order, plus the bias, rounded to float32; then
 * y >= t (y <= t where flipped; NaN gives 0), ORed over the pool window. */
typedef struct {
    int h, w, c, o, kh, kw, stride, pads[4], pool, pool_stride;
    double pad_value; /* as the manifest gives it (the Python runtime pads in float64) */
    const float *weight; /* (O, kh, kw, C) */
    const float *bias;   /* (O,) or NULL */
    const float *thr;    /* (O,) */
    const uint8_t *flip; /* (O,) */
} ecl_first_layer;

/* conv2d_binary -> threshold [-> maxpool_bits] (h = w = 1, kh = kw = 1 for a dense layer
 * and its threshold, with `offset` added to the accumulators). */
typedef struct {
    int h, w, c, o, kh, kw, stride, pads[4], zero_pad, repeat, pool, pool_stride;
    int32_t offset;
    const uint64_t *weight; /* (O, kh, kw, n_words(C)); pads: top, bottom, left, right */
    const int32_t *thr;     /* (O * repeat,) */
    const uint8_t *flip;    /* (O * repeat,) */
} ecl_binary_block;

/* the plain ops (run alone where no fused block applies) */
typedef struct { int n, c, repeat; const int32_t *thr; const uint8_t *flip; } ecl_threshold_op;
typedef struct { int n, c, repeat; const float *thr; const uint8_t *flip; } ecl_threshold_float_op;
typedef struct { int h, w, c, size, stride; } ecl_pool_op;
typedef struct { int n, c; const float *scale, *shift; } ecl_affine_op;
typedef struct { int f, o; const float *weight, *bias; } ecl_dense_float_op;

void ecl_blk_first_layer(const ecl_first_layer *l, const float *x, uint64_t *out);
void ecl_blk_conv_float(const ecl_first_layer *l, const float *x, float *out);
void ecl_blk_binary(const ecl_binary_block *b, const uint64_t *x, uint64_t *out, int32_t *acc);
void ecl_blk_binary_int(const ecl_binary_block *b, const uint64_t *x, int32_t *out);
void ecl_op_threshold(const ecl_threshold_op *t, const int32_t *x, uint64_t *out);
void ecl_op_threshold_float(const ecl_threshold_float_op *t, const float *x, uint64_t *out);
void ecl_op_maxpool_bits(const ecl_pool_op *p, const uint64_t *x, uint64_t *out);
void ecl_op_maxpool_float(const ecl_pool_op *p, const float *x, float *out);
void ecl_op_affine_int(const ecl_affine_op *a, const int32_t *x, float *out);
void ecl_op_affine(const ecl_affine_op *a, const float *x, float *out);
void ecl_op_dense_float(const ecl_dense_float_op *d, const float *x, float *out);
void ecl_op_copy(const void *x, void *out, size_t bytes);

/* One stored class of the bundle (GBM K prototypes at q bits, its head row). */
typedef struct {
    const char *name;
    int k, q;
    uint32_t count;
    const uint64_t *words; /* n_words(K * D * q) */
    const float *pi;       /* (K,) */
} ecl_model_class;

typedef struct {
    uint32_t model_id;   /* refuses state bytes of another model */
    int h, w, c;         /* the input */
    float scale;
    const float *mean, *std;
    int n_bits;          /* D */
    /* the layer program: normalised float (H, W, C) -> ECL_EMBED_WORDS words, on
     * `scratch` of fwd_scratch_bytes (8-byte aligned) */
    void (*embed)(const float *x, uint64_t *z, void *scratch);
    size_t fwd_scratch_bytes;
    /* the head at its stored precision: 32 (float), 16 (binary16 bits) or 8 (int8 + scale) */
    int head_bits;
    int n_classes;
    const ecl_model_class *classes;
    const void *head_weight; /* (D, C) row-major at head_bits */
    const float *head_scale; /* (C,) for int8, else NULL */
    const float *head_bias;  /* (C,) */
    double lr, weight_decay, gbm_weight;
    int epochs, batch_size;
    /* GBM config (the default size of a new class, EM schedule) */
    int cfg_k, cfg_q, trainable_pi, n_init, n_iter, n_max;
    double epsilon;
    /* budget over the stored bytes; policy 0 strict, 1 adapt */
    uint32_t budget_bytes;
    int policy;
    int max_classes;
    size_t name_pool;
    size_t pool_bytes;
} ecl_model;

extern const ecl_model ecl_the_model;

#endif /* EDGECL_BLOCKS_H */

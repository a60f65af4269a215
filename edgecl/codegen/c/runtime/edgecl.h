/* edgecl.h - the public C API of an exported edgecl model (written by `edgecl export-c`).
 *
 * A binarized feature extractor F (frozen), a float head G and a GBM class memory, with
 * on-device learning of new classes inside a byte budget. No malloc, no global mutable
 * state: the caller hands in two blocks of memory, the context (the learned state, at most
 * the bundle's budget) and the arena (working memory of predict and learn).
 *
 * The model's constants (ECL_INPUT_H ... ECL_STACK_BYTES) are the macros below, written
 * per bundle by the export.
 */
#ifndef EDGECL_H
#define EDGECL_H

#include <stddef.h>
#include <stdint.h>

#include "edgecl_config.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    ECL_OK = 0,
    ECL_E_ARG = -1,        /* a bad argument (NULL, out of range, bad name) */
    ECL_E_CTX_SMALL = -2,  /* ctx_bytes < ECL_CTX_BYTES */
    ECL_E_ARENA = -3,      /* the arena is too small for this call */
    ECL_E_BUDGET = -4,     /* the class does not fit in the budget (strict, or adapt at its floor) */
    ECL_E_EXISTS = -5,     /* reserved: learn_begin with a learned name updates it */
    ECL_E_UNKNOWN = -6,    /* no class of that name */
    ECL_E_STATE = -7,      /* state bytes truncated, corrupt or from another model */
    ECL_E_STATE_SMALL = -8,/* the output buffer of ecl_state_save is too small */
    ECL_E_SEQUENCE = -9,   /* learn_add/commit without learn_begin, or begin twice */
    ECL_E_SAMPLES = -10,   /* too few samples (fewer than the class's K prototypes) */
    ECL_E_NUMERIC = -11,   /* the head diverged (NaN or inf): learning rate too high */
    ECL_E_CAPACITY = -12,  /* no room for another class (class table or name pool full) */
    ECL_E_LAST_CLASS = -13 /* the last class cannot be forgotten */
};

typedef struct ecl_ctx ecl_ctx;

/* Lay out a context in ctx_mem (8-byte aligned, at least ECL_CTX_BYTES) with the bundle's
 * learned state; the arena (8-byte aligned) is the working memory of every later call. */
int ecl_init(void *ctx_mem, size_t ctx_bytes, void *arena, size_t arena_bytes, ecl_ctx **out);
int ecl_num_classes(const ecl_ctx *ctx);
const char *ecl_class_name(const ecl_ctx *ctx, int index);
/* One H*W*C uint8 image, HWC order: the index of the class with the largest score. */
int ecl_predict(ecl_ctx *ctx, const uint8_t *image, int *class_index);
/* The D-bit embedding of one image, ECL_EMBED_WORDS little-endian-packed uint64 words. */
int ecl_embed(ecl_ctx *ctx, const uint8_t *image, uint64_t *words);
/* ECL_INPUT_H*W*C bytes at the arena's end that predict, embed and learn_add leave alone:
 * read a camera frame or a file into it and pass it as `image`, so that the app needs no
 * image buffer of its own (NULL when the arena is smaller than an image). A commit reuses
 * these bytes: their contents are lost by ecl_learn_commit. */
uint8_t *ecl_input_buffer(ecl_ctx *ctx);
/* A new class (or, for an existing name, more samples of it: update), samples one at a
 * time, then commit (fit the class memory, retrain the head, inside the budget). */
int ecl_learn_begin(ecl_ctx *ctx, const char *name);
int ecl_learn_add(ecl_ctx *ctx, const uint8_t *image);
int ecl_learn_commit(ecl_ctx *ctx, uint64_t seed);
void ecl_learn_abort(ecl_ctx *ctx);
int ecl_forget_class(ecl_ctx *ctx, const char *name);
size_t ecl_stored_bytes(const ecl_ctx *ctx); /* class memory + head, as Python counts */
size_t ecl_budget_bytes(const ecl_ctx *ctx);
/* The learned state (classes, head, class memory) for flash, CRC-32 checksummed. */
int ecl_state_save(const ecl_ctx *ctx, void *out, size_t cap, size_t *written);
int ecl_state_load(ecl_ctx *ctx, const void *in, size_t n);
const char *ecl_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif /* EDGECL_H */

/* A test driver of the edgecl C runtime: runs a script of commands, one per line, and
 * prints one result line per result (the pytest module compares them with Python's).
 *   embed FILE N          E <hex words>            one line per image
 *   predict FILE N        P <index>                one line per image
 *   learn NAME FILE N SEED  L <rc> <stored bytes> <classes>   (a learned NAME: update)
 *   forget NAME           F <rc>
 *   names                 N <name>                 one line per class
 *   save FILE / load FILE S <rc> <bytes> / R <rc>
 *   hostile FILE          H <rc>                   truncations and bit flips of a saved state
 *   abort NAME FILE N     A <rc of the next commit without begin>
 * FILE holds N images of ECL_INPUT_H * ECL_INPUT_W * ECL_INPUT_C uint8 (HWC); each is read
 * into a buffer of the driver's, or with -DDRIVER_INPUT_BUFFER into ecl_input_buffer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgecl.h"

#ifndef DRIVER_SAMPLES
#define DRIVER_SAMPLES 100
#endif
#ifndef DRIVER_CLASSES
#define DRIVER_CLASSES ECL_MAX_CLASSES
#endif
#define IMAGE_BYTES (ECL_INPUT_H * ECL_INPUT_W * ECL_INPUT_C)
#define STATE_CAP (ECL_CTX_BYTES + 4096)

static uint64_t ctx_mem[ECL_CTX_BYTES / 8 + 1];
#ifdef DRIVER_UPDATE_COUNT
static uint64_t arena[ECL_ARENA_BYTES_UPDATE(DRIVER_UPDATE_COUNT, DRIVER_SAMPLES, DRIVER_CLASSES) / 8 + 1];
#else
static uint64_t arena[ECL_ARENA_BYTES_FOR(DRIVER_SAMPLES, DRIVER_CLASSES) / 8 + 1];
#endif
/* -DDRIVER_INPUT_BUFFER: the images go to ecl_input_buffer (the arena's end) instead */
static uint8_t image_mem[IMAGE_BYTES];
static uint8_t *image = image_mem;
static uint8_t state[STATE_CAP], state2[2 * STATE_CAP];

static FILE *open_images(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { printf("X cannot open %s\n", path); exit(2); }
    return f;
}

static int next_image(FILE *f) { return fread(image, 1, IMAGE_BYTES, f) == IMAGE_BYTES; }

int main(int argc, char **argv) {
    ecl_ctx *ctx;
    char line[512], a[256], b[256];
    FILE *script;
    int rc = ecl_init(ctx_mem, sizeof ctx_mem, arena, sizeof arena, &ctx);
    if (argc < 2) { printf("X usage: driver SCRIPT\n"); return 2; }
    if (rc) { printf("X init %d %s\n", rc, ecl_strerror(rc)); return 1; }
#ifdef DRIVER_INPUT_BUFFER
    image = ecl_input_buffer(ctx);
    if (!image) { printf("X no input buffer\n"); return 1; }
#endif
    printf("I %u %u %u\n", (unsigned)sizeof ctx_mem, (unsigned)sizeof arena, (unsigned)ecl_stored_bytes(ctx));
    script = fopen(argv[1], "r");
    if (!script) { printf("X cannot open %s\n", argv[1]); return 2; }
    while (fgets(line, sizeof line, script)) {
        long n = 0, i;
        unsigned long long seed = 0;
        if (sscanf(line, "embed %255s %ld", a, &n) == 2) {
            FILE *f = open_images(a);
            uint64_t z[ECL_EMBED_WORDS];
            for (i = 0; i < n && next_image(f); i++) {
                int w;
                rc = ecl_embed(ctx, image, z);
                printf("E");
                for (w = 0; w < ECL_EMBED_WORDS; w++) printf(" %016llx", (unsigned long long)z[w]);
                printf(rc ? " rc%d\n" : "\n", rc);
            }
            fclose(f);
        } else if (sscanf(line, "predict %255s %ld", a, &n) == 2) {
            FILE *f = open_images(a);
            for (i = 0; i < n && next_image(f); i++) {
                int k = -1;
                rc = ecl_predict(ctx, image, &k);
                printf(rc ? "P rc%d\n" : "P %d\n", rc ? rc : k);
            }
            fclose(f);
        } else if (sscanf(line, "learn %255s %255s %ld %llu", a, b, &n, &seed) == 4) {
            FILE *f = open_images(b);
            rc = ecl_learn_begin(ctx, a);
            for (i = 0; i < n && rc == 0 && next_image(f); i++) rc = ecl_learn_add(ctx, image);
            if (rc == 0) rc = ecl_learn_commit(ctx, (uint64_t)seed);
            if (rc) ecl_learn_abort(ctx);
            printf("L %d %u %d\n", rc, (unsigned)ecl_stored_bytes(ctx), ecl_num_classes(ctx));
            fclose(f);
        } else if (sscanf(line, "forget %255s", a) == 1) {
            printf("F %d\n", ecl_forget_class(ctx, a));
        } else if (strncmp(line, "names", 5) == 0) {
            for (i = 0; i < ecl_num_classes(ctx); i++) printf("N %s\n", ecl_class_name(ctx, (int)i));
        } else if (sscanf(line, "save %255s", a) == 1) {
            size_t len = 0;
            FILE *f;
            rc = ecl_state_save(ctx, state, sizeof state, &len);
            f = fopen(a, "wb");
            if (f) { fwrite(state, 1, len, f); fclose(f); }
            printf("S %d %u\n", rc, (unsigned)len);
        } else if (sscanf(line, "load %255s", a) == 1) {
            FILE *f = fopen(a, "rb");
            size_t len = f ? fread(state, 1, sizeof state, f) : 0;
            if (f) fclose(f);
            printf("R %d\n", ecl_state_load(ctx, state, len));
        } else if (sscanf(line, "hostile %255s", a) == 1) {
            FILE *f = fopen(a, "rb");
            size_t len = f ? fread(state, 1, sizeof state, f) : 0, cut, bit;
            size_t before = 0, after = 0;
            int bad = 0;
            if (f) fclose(f);
            ecl_state_save(ctx, state2, STATE_CAP, &before);
            for (cut = 0; cut < len; cut += 1 + len / 61) /* truncated */
                if (ecl_state_load(ctx, state, cut) == 0) bad++;
            for (bit = 0; bit < len * 8; bit += 1 + (len * 8) / 97) { /* one bit flipped */
                state[bit / 8] ^= (uint8_t)(1u << (bit % 8));
                if (ecl_state_load(ctx, state, len) == 0) bad++;
                state[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            }
            ecl_state_save(ctx, state2 + STATE_CAP, STATE_CAP, &after);
            printf("H %d %d\n", bad, before == after && memcmp(state2, state2 + STATE_CAP, before) == 0 ? 0 : 1);
        } else if (sscanf(line, "abort %255s %255s %ld", a, b, &n) == 3) {
            FILE *f = open_images(b);
            size_t s0 = ecl_stored_bytes(ctx);
            rc = ecl_learn_begin(ctx, a);
            for (i = 0; i < n && rc == 0 && next_image(f); i++) rc = ecl_learn_add(ctx, image);
            ecl_learn_abort(ctx);
            printf("A %d %d %d\n", rc, ecl_learn_commit(ctx, 1), ecl_stored_bytes(ctx) == s0);
            fclose(f);
        }
    }
    fclose(script);
    return 0;
}

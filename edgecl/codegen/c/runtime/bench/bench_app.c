/* The measurement app of `edgecl bench c` (not part of an export): on the host it times
 * predict with clock(); on QEMU's mps2-an386 (-DECL_BENCH_M4, run with -icount shift=0)
 * it counts SysTick ticks of the CPU clock around each call, which QEMU advances with the
 * virtual time of the instructions executed.
 *   bench_app IMAGES N_PREDICT CLASS_FILES... (each: 100 images of one new class)
 * prints: "predict <ticks or ns per call>", "commit <ticks per call>" per class, "ok". */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "edgecl.h"

#ifndef BENCH_SAMPLES
#define BENCH_SAMPLES 100
#endif
#ifndef BENCH_CLASSES
#define BENCH_CLASSES 10
#endif
#define IMAGE_BYTES (ECL_INPUT_H * ECL_INPUT_W * ECL_INPUT_C)

static uint64_t ctx_mem[(ECL_CTX_BYTES + 7) / 8];
static uint64_t arena[(ECL_ARENA_BYTES_FOR(BENCH_SAMPLES, BENCH_CLASSES) + 7) / 8];
static uint8_t image[IMAGE_BYTES];

#ifdef ECL_BENCH_M4
static volatile uint32_t wraps;
void SysTick_Handler(void) { wraps++; }
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
static void clock_start(void) { SYST_RVR = 0xFFFFFFu; SYST_CVR = 0; SYST_CSR = 7u; }
static unsigned long long now(void) {
    uint32_t w, v;
    do { w = wraps; v = SYST_CVR; } while (w != wraps);
    return (unsigned long long)w * 0x1000000ull + (0xFFFFFFu - v);
}
#else
static void clock_start(void) {}
static unsigned long long now(void) {
    return (unsigned long long)((double)clock() * (1e9 / CLOCKS_PER_SEC)); /* ns of CPU time */
}
#endif

int main(int argc, char **argv) {
    ecl_ctx *ctx;
    FILE *f;
    long n, i;
    int a, k = 0, rc;
    unsigned long long t0, t1;
    if (argc < 3) { printf("usage: bench_app IMAGES N CLASS_FILES...\n"); return 2; }
    clock_start();
    rc = ecl_init(ctx_mem, sizeof ctx_mem, arena, sizeof arena, &ctx);
    if (rc) { printf("init %s\n", ecl_strerror(rc)); return 1; }
    n = atol(argv[2]);
    f = fopen(argv[1], "rb");
    if (!f || fread(image, 1, IMAGE_BYTES, f) != IMAGE_BYTES) { printf("no images\n"); return 2; }
    fclose(f);
    ecl_predict(ctx, image, &k); /* warm */
    t0 = now();
    for (i = 0; i < n; i++) ecl_predict(ctx, image, &k);
    t1 = now();
    printf("predict %.1f %d\n", (double)(t1 - t0) / (double)n, k);
    for (a = 3; a < argc; a++) {
        char name[16];
        sprintf(name, "new%d", a - 3);
        f = fopen(argv[a], "rb");
        if (!f) { printf("cannot open %s\n", argv[a]); return 2; }
        rc = ecl_learn_begin(ctx, name);
        for (i = 0; i < BENCH_SAMPLES && rc == 0 && fread(image, 1, IMAGE_BYTES, f) == IMAGE_BYTES; i++)
            rc = ecl_learn_add(ctx, image);
        fclose(f);
        t0 = now();
        if (rc == 0) rc = ecl_learn_commit(ctx, (uint64_t)a);
        t1 = now();
        printf("commit %llu %d %d %u\n", t1 - t0, rc, ecl_num_classes(ctx), (unsigned)ecl_stored_bytes(ctx));
    }
    t0 = now();
    for (i = 0; i < n; i++) ecl_predict(ctx, image, &k);
    t1 = now();
    printf("predict_learned %.1f %d\n", (double)(t1 - t0) / (double)n, k);
#ifdef ECL_BENCH_M4
    { /* 2,000,000 instructions (subs + bne), to turn ticks into instructions */
        uint32_t loops = 1000000u;
        t0 = now();
        __asm__ volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(loops));
        t1 = now();
        printf("calib %llu\n", t1 - t0);
    }
#endif
    printf("ok\n");
    return 0;
}

/* The measurement app of `edgecl bench c` (not part of an export): on the host it times
 * predict with clock(); on QEMU's mps2-an386 (-DECL_BENCH_M4, built with `make
 * cortex-m4-bare`, run with -icount shift=0) it counts SysTick ticks of the CPU clock
 * around each call, which QEMU advances with the virtual time of the instructions
 * executed, and does its I/O through board/semihost.h: no newlib stdio or malloc, so the
 * image's RAM is the context, the arena and a few words of the app's own.
 *   bench_app IMAGES N_PREDICT CLASS_FILES... (each: 100 images of one new class)
 * prints: "predict <ticks or ns per call, tenths>", "commit <ticks> <rc> <classes>
 * <stored bytes>" per class, "predict_learned ...", "ok". The image is read straight into
 * the runtime's input buffer (ecl_input_buffer, in the arena). */
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

#ifdef ECL_BENCH_M4
#include "board/semihost.h"
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
static void out_s(const char *s) { ecl_sh_puts(s); }
static void out_u(unsigned long long v) { ecl_sh_putu(v); }
static int file_open(const char *path) { return ecl_sh_open_read(path); }
static int file_read(int f, uint8_t *buf) { return ecl_sh_read(f, buf, IMAGE_BYTES) == IMAGE_BYTES; }
static void file_close(int f) { ecl_sh_close(f); }
#else
#include <stdio.h>
#include <time.h>
static FILE *files[4];
static void clock_start(void) {}
static unsigned long long now(void) {
    return (unsigned long long)((double)clock() * (1e9 / CLOCKS_PER_SEC)); /* ns of CPU time */
}
static void out_s(const char *s) { fputs(s, stdout); }
static void out_u(unsigned long long v) { printf("%llu", v); }
static int file_open(const char *path) {
    int i;
    for (i = 0; i < 4; i++)
        if (!files[i]) { files[i] = fopen(path, "rb"); return files[i] ? i : -1; }
    return -1;
}
static int file_read(int f, uint8_t *buf) { return fread(buf, 1, IMAGE_BYTES, files[f]) == IMAGE_BYTES; }
static void file_close(int f) { fclose(files[f]); files[f] = NULL; }
#endif

static void out_line(const char *what, unsigned long long v) { out_s(what); out_u(v); }

/* per call, in tenths: "<whole>.<tenth>" */
static void out_per_call(const char *what, unsigned long long total, long n, int k) {
    unsigned long long tenths = total * 10u / (unsigned long long)n;
    out_line(what, tenths / 10u);
    out_line(".", tenths % 10u);
    out_line(" ", (unsigned long long)k);
    out_s("\n");
}

static long to_long(const char *s) {
    long v = 0;
    while (*s >= '0' && *s <= '9') v = v * 10 + (*s++ - '0');
    return v;
}

static int run(int argc, char **argv) {
    ecl_ctx *ctx;
    uint8_t *image;
    long n, i;
    int a, f, k = 0, rc;
    unsigned long long t0, t1;
    if (argc < 3) { out_s("usage: bench_app IMAGES N CLASS_FILES...\n"); return 2; }
    clock_start();
    rc = ecl_init(ctx_mem, sizeof ctx_mem, arena, sizeof arena, &ctx);
    if (rc) { out_s("init "); out_s(ecl_strerror(rc)); out_s("\n"); return 1; }
    image = ecl_input_buffer(ctx);
    n = to_long(argv[2]);
    f = file_open(argv[1]);
    if (f < 0 || !file_read(f, image)) { out_s("no images\n"); return 2; }
    file_close(f);
    ecl_predict(ctx, image, &k); /* warm */
    t0 = now();
    for (i = 0; i < n; i++) ecl_predict(ctx, image, &k);
    t1 = now();
    out_per_call("predict ", t1 - t0, n, k);
    for (a = 3; a < argc; a++) {
        char name[8] = "new0";
        name[3] = (char)('0' + (a - 3) % 10);
        f = file_open(argv[a]);
        if (f < 0) { out_s("cannot open "); out_s(argv[a]); out_s("\n"); return 2; }
        rc = ecl_learn_begin(ctx, name);
        for (i = 0; i < BENCH_SAMPLES && rc == 0 && file_read(f, image); i++)
            rc = ecl_learn_add(ctx, image);
        file_close(f);
        t0 = now();
        if (rc == 0) rc = ecl_learn_commit(ctx, (uint64_t)a);
        t1 = now();
        out_line("commit ", t1 - t0);
        out_s(rc < 0 ? " -" : " ");
        out_u((unsigned long long)(rc < 0 ? -rc : rc));
        out_line(" ", (unsigned long long)ecl_num_classes(ctx));
        out_line(" ", (unsigned long long)ecl_stored_bytes(ctx));
        out_s("\n");
    }
    f = file_open(argv[1]); /* the commits reuse the arena, the input buffer with it */
    if (f < 0 || !file_read(f, image)) { out_s("no images\n"); return 2; }
    file_close(f);
    t0 = now();
    for (i = 0; i < n; i++) ecl_predict(ctx, image, &k);
    t1 = now();
    out_per_call("predict_learned ", t1 - t0, n, k);
#ifdef ECL_BENCH_M4
    { /* 2,000,000 instructions (subs + bne), to turn ticks into instructions */
        uint32_t loops = 1000000u;
        t0 = now();
        __asm__ volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(loops));
        t1 = now();
        out_line("calib ", t1 - t0);
        out_s("\n");
    }
#endif
    out_s("ok\n");
    return 0;
}

#ifdef ECL_BENCH_M4
int main(void) {
    static char line[160]; /* the bench passes short relative names */
    char *argv[16];
    int argc = ecl_sh_args(line, sizeof line, argv, 16);
    return run(argc, argv);
}
#else
int main(int argc, char **argv) { return run(argc, argv); }
#endif

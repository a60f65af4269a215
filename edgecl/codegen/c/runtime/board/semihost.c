/* Arm semihosting calls for mps2-an386 apps without newlib (see semihost.h). */
#include "semihost.h"

#include <string.h>

enum { SYS_OPEN = 0x01, SYS_CLOSE = 0x02, SYS_WRITE = 0x05, SYS_READ = 0x06,
       SYS_GET_CMDLINE = 0x15, SYS_EXIT = 0x18, SYS_EXIT_EXTENDED = 0x20 };

static long semihost(long op, void *args) {
    register long r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = args;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

int ecl_sh_open_read(const char *path) {
    long args[3];
    args[0] = (long)path;
    args[1] = 1; /* "rb" */
    args[2] = (long)strlen(path);
    return (int)semihost(SYS_OPEN, args);
}

long ecl_sh_read(int handle, void *buf, size_t n) {
    long args[3], left;
    args[0] = handle;
    args[1] = (long)buf;
    args[2] = (long)n;
    left = semihost(SYS_READ, args); /* the number of bytes NOT read */
    return left < 0 || (size_t)left > n ? -1 : (long)n - left;
}

void ecl_sh_close(int handle) {
    long args[1];
    args[0] = handle;
    semihost(SYS_CLOSE, args);
}

/* the host's standard output: ":tt" opened for writing ("w"), as newlib's rdimon does */
static int console = -1;

void ecl_sh_puts(const char *s) {
    long args[3];
    if (console < 0) {
        args[0] = (long)":tt";
        args[1] = 4; /* "w" */
        args[2] = 3;
        console = (int)semihost(SYS_OPEN, args);
        if (console < 0) return;
    }
    args[0] = console;
    args[1] = (long)s;
    args[2] = (long)strlen(s);
    semihost(SYS_WRITE, args);
}

void ecl_sh_putu(unsigned long long v) {
    char text[24];
    int i = (int)sizeof text - 1;
    text[i] = '\0';
    do {
        text[--i] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v && i > 0);
    ecl_sh_puts(text + i);
}

int ecl_sh_args(char *buf, size_t cap, char **argv, int max_args) {
    long args[2];
    int argc = 0;
    char *p;
    if (cap < 2) return 0;
    args[0] = (long)buf;
    args[1] = (long)cap - 1;
    if (semihost(SYS_GET_CMDLINE, args) != 0) return 0;
    buf[args[1] >= 0 && (size_t)args[1] < cap ? (size_t)args[1] : cap - 1] = '\0';
    for (p = buf; *p && argc < max_args;) {
        while (*p == ' ') *p++ = '\0';
        if (!*p) break;
        argv[argc++] = p;
        while (*p && *p != ' ') p++;
    }
    return argc;
}

void ecl_sh_exit(int status) {
    long args[2];
    args[0] = 0x20026; /* ADP_Stopped_ApplicationExit */
    args[1] = status;
    semihost(SYS_EXIT_EXTENDED, args);
    semihost(SYS_EXIT, (void *)(size_t)0x20026); /* hosts without the extended call */
    for (;;) {
    }
}

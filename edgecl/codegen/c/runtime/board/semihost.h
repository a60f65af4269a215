/* Arm semihosting without newlib, for apps on QEMU's mps2-an386 built with
 * `make cortex-m4-bare`: no stdio, no malloc, no newlib start-up, so the app's RAM is its
 * own buffers only. Each call is one `bkpt 0xab` with an operation number and a block of
 * arguments (the Arm semihosting specification). */
#ifndef ECL_SEMIHOST_H
#define ECL_SEMIHOST_H

#include <stddef.h>

/* open a host file for reading in binary ("rb"): a handle >= 0, or -1 */
int ecl_sh_open_read(const char *path);
/* read up to n bytes: the number read (0 at the end of the file), or -1 */
long ecl_sh_read(int handle, void *buf, size_t n);
void ecl_sh_close(int handle);
/* write a NUL-terminated string to the host's standard output */
void ecl_sh_puts(const char *s);
/* write an unsigned integer in decimal */
void ecl_sh_putu(unsigned long long v);
/* the command line QEMU passes (-semihosting-config arg=...), split at spaces into argv
 * (pointers into buf); returns argc, 0 when the host gives none */
int ecl_sh_args(char *buf, size_t cap, char **argv, int max_args);
/* end the program with an exit status the host sees */
void ecl_sh_exit(int status);

#endif

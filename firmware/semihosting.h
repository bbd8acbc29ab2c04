/* ARM semihosting: the program asks its debugger (here QEMU) to print or to exit.
 *
 * A Cortex-M program has no terminal. With semihosting it executes `bkpt 0xab`
 * with an operation number in r0 and a pointer to the arguments in r1; the
 * debugger does the work on the host and returns a result in r0. QEMU implements
 * it when started with `-semihosting-config enable=on`.
 * Reference: Arm, "Semihosting for AArch32 and AArch64", version 3.0
 * (operation numbers and argument blocks below are from its tables).
 *
 * Freestanding: no libc, no heap, nothing but these few calls.
 */
#ifndef MINITINY_SEMIHOSTING_H
#define MINITINY_SEMIHOSTING_H

#include <stddef.h>
#include <stdint.h>

/* Exit statuses QEMU returns to the host (SYS_EXIT_EXTENDED passes them through). */
#define MINITINY_EXIT_OK 0            /* every inference ran                           */
#define MINITINY_EXIT_INVOKE_ERROR 2  /* the model's invoke returned nonzero           */
#define MINITINY_EXIT_FAULT 3         /* a fault handler ran (startup.c)               */
/* QEMU itself exits 1 for its own errors; a locked-up core makes it abort (134). */

/* Standard output and standard error of the host. */
#define SH_STDOUT 1
#define SH_STDERR 2

void sh_write0(const char *s);                        /* SYS_WRITE0: a NUL-terminated string */
void sh_write(int stream, const char *buf, size_t n); /* SYS_WRITE: n bytes to stdout/stderr  */
void sh_puts(int stream, const char *s);              /* a string, via SYS_WRITE              */
void sh_put_int(int stream, int32_t v);               /* a decimal integer                    */
void sh_put_hex(int stream, uint32_t v);              /* 0x%08x                               */
void sh_exit(int status) __attribute__((noreturn));   /* SYS_EXIT_EXTENDED                    */

#endif /* MINITINY_SEMIHOSTING_H */

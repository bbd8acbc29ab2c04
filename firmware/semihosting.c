/* ARM semihosting calls (see semihosting.h). */
#include "semihosting.h"

/* Operation numbers (Arm semihosting specification, table "Semihosting operations"). */
#define SYS_OPEN 0x01
#define SYS_WRITE0 0x04
#define SYS_WRITE 0x05
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u /* the 'reason' of a normal exit */

/* One semihosting call: r0 = operation, r1 = argument; the host answers in r0.
 * On M-profile cores the trap instruction is `bkpt 0xab`. */
static int sh_call(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void sh_write0(const char *s) { sh_call(SYS_WRITE0, s); }

/* The host's terminal is the special file ":tt": opened for writing ("w", mode 4)
 * it is standard output, for appending ("a", mode 8) standard error. */
static int sh_handle(int stream)
{
    static int handles[3] = { -1, -1, -1 };
    if (handles[stream] < 0) {
        uint32_t args[3] = { (uint32_t)":tt", stream == SH_STDERR ? 8u : 4u, 3u };
        handles[stream] = sh_call(SYS_OPEN, args);
    }
    return handles[stream];
}

void sh_write(int stream, const char *buf, size_t n)
{
    uint32_t args[3] = { (uint32_t)sh_handle(stream), (uint32_t)buf, (uint32_t)n };
    sh_call(SYS_WRITE, args); /* returns the number of bytes NOT written */
}

void sh_puts(int stream, const char *s)
{
    size_t n = 0;
    while (s[n] != '\0') n++;
    sh_write(stream, s, n);
}

void sh_put_int(int stream, int32_t v)
{
    char text[12]; /* "-2147483648" */
    int pos = (int)sizeof text;
    uint32_t magnitude = v < 0 ? 0u - (uint32_t)v : (uint32_t)v;
    do {
        text[--pos] = (char)('0' + magnitude % 10u);
        magnitude /= 10u;
    } while (magnitude != 0u);
    if (v < 0) text[--pos] = '-';
    sh_write(stream, text + pos, sizeof text - (size_t)pos);
}

void sh_put_hex(int stream, uint32_t v)
{
    char text[10] = { '0', 'x' };
    for (int digit = 0; digit < 8; digit++)
        text[2 + digit] = "0123456789abcdef"[(v >> (28 - 4 * digit)) & 0xfu];
    sh_write(stream, text, sizeof text);
}

/* SYS_EXIT_EXTENDED takes {reason, subcode}; with reason "application exit"
 * QEMU exits with status `subcode`. */
void sh_exit(int status)
{
    uint32_t args[2] = { ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status };
    sh_call(SYS_EXIT_EXTENDED, args);
    for (;;) {
    }
}

/* What runs before main() on a bare Cortex-M, and what runs when it faults.
 *
 * On reset the core reads two words from the vector table at address 0: the initial
 * stack pointer and the address of Reset_Handler. There is no operating system and no
 * C library: Reset_Handler itself copies initialised data from flash to RAM, zeroes
 * .bss, switches the FPU on, calls main() and reports main's return value to the host
 * (QEMU) through semihosting. The symbols _sidata, _sdata, ... come from link.ld.
 * Reference: Arm v7-M / v8-M Architecture Reference Manuals (vector table, exception
 * entry, CPACR, CFSR/HFSR), and Joseph Yiu, "The Definitive Guide to Arm Cortex-M3
 * and Cortex-M4 Processors", chapters 4 and 12.
 */
#include <stddef.h>
#include <stdint.h>

#include "semihosting.h"

extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[], _estack[];
int main(void);

void Reset_Handler(void)
{
#if defined(__ARM_FP)
    /* CPACR (Coprocessor Access Control, 0xE000ED88): full access to CP10 and CP11,
     * the floating-point unit (and, on Cortex-M55, the MVE vector unit). Without it
     * the first FPU instruction is a UsageFault. dsb/isb make it take effect now. */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    /* Sizes from addresses (link.ld aligns both sections to 4 bytes). */
    uintptr_t data_words = ((uintptr_t)_edata - (uintptr_t)_sdata) / 4u;
    uintptr_t bss_words = ((uintptr_t)_ebss - (uintptr_t)_sbss) / 4u;
    for (uintptr_t i = 0; i < data_words; i++) _sdata[i] = _sidata[i]; /* .data: first values */
    for (uintptr_t i = 0; i < bss_words; i++) _sbss[i] = 0u;          /* .bss: zeros         */
    sh_exit(main());
}

/* ---- faults ---------------------------------------------------------------------
 * A fault (bad address, undefined instruction, unaligned access, division by zero
 * when trapped...) enters Fault_Handler with the registers r0-r3, r12, lr, pc, xpsr
 * pushed on the stack that was in use. The handler must not trust that stack, so the
 * assembly stub below fetches the faulting pc and lr from the pushed frame, moves sp
 * back to the top of RAM and only then calls C, which prints the System Control
 * Block's fault status registers and exits with MINITINY_EXIT_FAULT. A fault inside
 * the fault handler locks the core up; QEMU then aborts, and the host sees that too. */
__attribute__((noreturn, used)) void minitiny_fault_report(uint32_t pc, uint32_t lr)
{
    uint32_t exception;
    /* IPSR: the exception number, 3 HardFault, 4 MemManage, 5 BusFault, 6 UsageFault */
    __asm__ volatile("mrs %0, ipsr" : "=r"(exception));
    sh_puts(SH_STDERR, "minitiny-fault exception=");
    sh_put_int(SH_STDERR, (int32_t)(exception & 0x1FFu));
    sh_puts(SH_STDERR, " pc=");
    sh_put_hex(SH_STDERR, pc);
    sh_puts(SH_STDERR, " lr=");
    sh_put_hex(SH_STDERR, lr);
    sh_puts(SH_STDERR, " cfsr="); /* Configurable Fault Status: which MemManage/Bus/Usage fault */
    sh_put_hex(SH_STDERR, *(volatile uint32_t *)0xE000ED28u);
    sh_puts(SH_STDERR, " hfsr="); /* HardFault Status: bit 30 FORCED = escalated from another fault */
    sh_put_hex(SH_STDERR, *(volatile uint32_t *)0xE000ED2Cu);
    sh_puts(SH_STDERR, " bfar="); /* BusFault Address, valid when CFSR bit 15 BFARVALID is set */
    sh_put_hex(SH_STDERR, *(volatile uint32_t *)0xE000ED38u);
    sh_puts(SH_STDERR, "\n");
    sh_exit(MINITINY_EXIT_FAULT);
}

__attribute__((naked)) static void Fault_Handler(void)
{
    __asm__ volatile(
        "tst lr, #4\n\t"          /* EXC_RETURN bit 2: which stack holds the frame? */
        "ite eq\n\t"
        "mrseq r0, msp\n\t"
        "mrsne r0, psp\n\t"
        "ldr r1, [r0, #20]\n\t"   /* pushed lr */
        "ldr r0, [r0, #24]\n\t"   /* pushed pc: the faulting instruction */
        "ldr r2, =_estack\n\t"
        "mov sp, r2\n\t"          /* a fresh stack for the C part */
        "b minitiny_fault_report\n\t"
        ".ltorg");
}

/* The vector table: initial stack pointer, then one handler address per exception.
 * link.ld places the .vectors section first in flash, at address 0. Interrupts are
 * never enabled, so only the 16 system exceptions are listed. (A union because ISO C
 * does not convert between data and function pointers.) */
typedef union {
    uint32_t *stack_top;
    void (*handler)(void);
} vector_t;
#define HANDLER(f) { .handler = f }
__attribute__((section(".vectors"), used)) const vector_t minitiny_vectors[16] = {
    { .stack_top = _estack }, /* 0  initial main stack pointer: top of RAM */
    HANDLER(Reset_Handler),   /* 1  reset                                  */
    HANDLER(Fault_Handler),   /* 2  NMI                                    */
    HANDLER(Fault_Handler),   /* 3  HardFault                              */
    HANDLER(Fault_Handler),   /* 4  MemManage                              */
    HANDLER(Fault_Handler),   /* 5  BusFault                               */
    HANDLER(Fault_Handler),   /* 6  UsageFault                             */
    HANDLER(Fault_Handler),   /* 7  SecureFault (v8-M)                     */
    HANDLER(0), HANDLER(0), HANDLER(0), /* 8-10 reserved                   */
    HANDLER(Fault_Handler),   /* 11 SVCall                                 */
    HANDLER(Fault_Handler),   /* 12 DebugMonitor                           */
    HANDLER(0),               /* 13 reserved                               */
    HANDLER(Fault_Handler),   /* 14 PendSV                                 */
    HANDLER(Fault_Handler),   /* 15 SysTick                                */
};

/* ---- the four functions a C compiler may call by itself -------------------------
 * GCC documents that even a freestanding program must provide memcpy, memmove,
 * memset and memcmp: it emits calls to them for structure copies and for loops it
 * recognises. Without a C library, here they are, byte by byte. */
void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d < s) {
        while (n--) *d++ = *s++;
    } else {
        while (n--) d[n] = s[n];
    }
    return dst;
}

void *memset(void *dst, int value, size_t n)
{
    unsigned char *d = dst;
    while (n--) *d++ = (unsigned char)value;
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y) return *x < *y ? -1 : 1;
    return 0;
}

/* Instruction-count markers.
 *
 * MINITINY_MARK() marks a point in the program. QEMU has no cycle model, but it can
 * count the instructions it executes: the TCG plugin mtcount.c counts every one and
 * logs the running count each time a marker executes, so the host subtracts two
 * marks to get the exact number of instructions between them.
 *
 * The marker is `mov r11, r11` (Thumb 0x46DB): it changes nothing, so it costs one
 * instruction and the compiler keeps it where it is ("memory" clobber, volatile).
 *
 * Without plugins (a QEMU built without them) the fallback stores a counter reading
 * instead: under `-icount` virtual time advances exactly 2^shift ns per instruction, so
 * the board's free-running FPGA counter (cores.py) measures instructions;
 * harness.c.j2 calibrates ticks per instruction with a block of known length.
 *
 * The profiling build compiles the model with `-include marker.h -DMINITINY_PROFILE`,
 * which defines the model's MINITINY_LAYER_HOOK(i) (called before layer i and after
 * the last layer) as a marker; the production build leaves the hook empty.
 */
#ifndef MINITINY_MARKER_H
#define MINITINY_MARKER_H

#include <stdint.h>

#ifdef MINITINY_COUNTER_ADDR
/* The FPGA I/O COUNTER: a 32-bit up-counter at the peripheral clock. */
extern volatile uint32_t minitiny_stamps[];
extern volatile uint32_t minitiny_n_stamps;
#define MINITINY_MARK() \
    (minitiny_stamps[minitiny_n_stamps++] = *(volatile const uint32_t *)(MINITINY_COUNTER_ADDR))
#else
#define MINITINY_MARK() __asm__ volatile("mov r11, r11" ::: "memory")
#endif

#ifdef MINITINY_PROFILE
#define MINITINY_LAYER_HOOK(i) MINITINY_MARK()
#endif

#endif /* MINITINY_MARKER_H */

/* mtcount: a QEMU TCG plugin that counts the guest instructions QEMU executes.
 *
 * QEMU translates guest code block by block ("translation blocks"). When it translates
 * a block it calls on_translate(), which asks QEMU to add 1 to a counter before every
 * instruction of the block runs (an inline add, no function call). For each marker
 * instruction `mov r11, r11` (Thumb encoding 0x46DB, see marker.h) it also registers
 * on_mark(), which logs the running count. The host subtracts consecutive marks.
 *
 * Build (runner.py does it, into its cache):  cc -shared -fPIC -O2 -o libmtcount.so mtcount.c
 * Use:  qemu-system-arm ... -plugin ./libmtcount.so,out=FILE
 * Output lines:  "mark N" at each marker (N counts the marker itself), "total N" at exit.
 *
 * QEMU's plugin header (qemu-plugin.h) is not installed by distribution packages, so the
 * few declarations used are written out below. They are the plugin API of
 * QEMU_PLUGIN_VERSION 1 (QEMU 4.2 to 8.x); a QEMU that refuses this plugin makes
 * runner.py fall back to the -icount timer counter.
 * Reference: QEMU documentation, "QEMU TCG Plugins" (docs/devel/tcg-plugins.rst),
 * and its example plugin contrib/plugins/insn.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- the plugin API (QEMU_PLUGIN_VERSION 1) --------------------------------------- */
typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t; /* not read here */
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t, struct qemu_plugin_tb *);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, qemu_plugin_vcpu_tb_trans_cb_t);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *, qemu_plugin_vcpu_udata_cb_t,
                                            enum qemu_plugin_cb_flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *, enum qemu_plugin_op,
                                                void *ptr, uint64_t imm);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, qemu_plugin_udata_cb_t, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *);
void qemu_plugin_outs(const char *);

#define EXPORT __attribute__((visibility("default")))
EXPORT int qemu_plugin_version = 1;
/* ------------------------------------------------------------------------------------ */

static uint64_t executed; /* instructions so far (M-profile QEMU has one vCPU) */
static FILE *out;         /* out=FILE, else QEMU's log (stderr) */

static void say(const char *line)
{
    if (out) {
        fputs(line, out);
    } else {
        qemu_plugin_outs(line);
    }
}

static void on_mark(unsigned int vcpu_index, void *userdata)
{
    char line[40];
    (void)vcpu_index;
    (void)userdata;
    snprintf(line, sizeof line, "mark %llu\n", (unsigned long long)executed);
    say(line);
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    for (size_t i = 0; i < qemu_plugin_tb_n_insns(tb); i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        /* Registered first, so it runs before on_mark: a mark includes the marker. */
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &executed, 1);
        const uint8_t *bytes = qemu_plugin_insn_data(insn);
        /* The first halfword decides: 0x46DB is a whole 16-bit Thumb instruction (a 32-bit
         * one starts with 0b11101, 0b11110 or 0b11111). Do not require a size of 2: after a
         * 16-bit instruction 4 bytes before the end of a page (1 KiB on M-profile, so at an
         * address ending in 0x3fc), QEMU 7.2's Thumb translator reads the next halfword to
         * see whether it crosses the page, and that read is added to the instruction's
         * bytes: size 4. The host also checks that it saw every marker (runner.py). */
        if (qemu_plugin_insn_size(insn) >= 2 && bytes[0] == 0xDB && bytes[1] == 0x46)
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS, NULL);
    }
}

static void at_exit(qemu_plugin_id_t id, void *userdata)
{
    char line[40];
    (void)id;
    (void)userdata;
    snprintf(line, sizeof line, "total %llu\n", (unsigned long long)executed);
    say(line);
    if (out) fclose(out);
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            out = fopen(argv[i] + 4, "w");
            if (!out) return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}

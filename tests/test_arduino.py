"""`minitiny export arduino`: the library's layout, and the library built and run.

The Arduino IDE and its mbed core are not available here, so the library is built the way
the core builds it, with arm-none-eabi-gcc / g++ and the Nano 33 BLE's flags
(minitiny.firmware.arduino.NANO33BLE_CFLAGS / CXXFLAGS): the model's C as a library
source, the example sketch as C++ after the Arduino builder's one transformation
(`#include <Arduino.h>` put first). The sketch compiles against ARDUINO_H below, a stand-in
for the core's Arduino.h written for this test (Serial.print/println, micros, setup/loop).
The stand-in writes through semihosting, so the linked program runs on QEMU's Cortex-M4:
the sketch must print the int8 outputs the NumPy reference computes for its test input
(the oracle: QModel.predict_int8 here, independent of the C) and "matches the reference: yes".
"""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
import int8_oracle as o  # noqa: E402

from minitiny import codegen  # noqa: E402
from minitiny.firmware import arduino  # noqa: E402
from minitiny.quant.graph import QModel  # noqa: E402

GCC, GXX = shutil.which("arm-none-eabi-gcc"), shutil.which("arm-none-eabi-g++")
QEMU = shutil.which("qemu-system-arm")
needs_gcc = pytest.mark.skipif(GCC is None or GXX is None,
                               reason="arm-none-eabi-gcc / g++ not installed (gcc-arm-none-eabi)")
needs_qemu = pytest.mark.skipif(QEMU is None, reason="qemu-system-arm not installed")
FIRMWARE = os.path.dirname(os.path.abspath(arduino.__file__))
STRICT = ["-Wall", "-Wextra", "-Werror"]

ARDUINO_H = r"""
/* Arduino.h for tests/test_arduino.py: the little of the Arduino core a minitiny example
 * sketch uses. Serial writes to the host through semihosting (minitiny's firmware runtime). */
#ifndef ARDUINO_H
#define ARDUINO_H
#include <stddef.h>
#include <stdint.h>

void setup(void);
void loop(void);
unsigned long micros(void);

class StubSerial {
public:
    void begin(unsigned long) {}
    explicit operator bool() const { return true; }
    size_t print(const char *text);
    size_t print(long value);
    size_t print(unsigned long value) { return print((long)value); }
    size_t print(int value) { return print((long)value); }
    size_t print(unsigned int value) { return print((long)value); }
    size_t print(double value, int digits = 2);
    size_t println() { return print("\n"); }
    template <typename T> size_t println(T value) { size_t n = print(value); return n + println(); }
    size_t println(double value, int digits) { size_t n = print(value, digits); return n + println(); }
};
extern StubSerial Serial;
#endif
"""

STUB_CPP = r"""
#include <Arduino.h>
extern "C" {
#include "semihosting.h"
int main(void);
}

StubSerial Serial;

size_t StubSerial::print(const char *text) { sh_puts(SH_STDOUT, text); return 0; }
size_t StubSerial::print(long value) { sh_put_int(SH_STDOUT, (int32_t)value); return 0; }
size_t StubSerial::print(double value, int digits)
{
    if (value < 0) { print("-"); value = -value; }
    long whole = (long)value;
    print(whole);
    print(".");
    double frac = value - (double)whole;
    for (int i = 0; i < digits; i++) {
        frac *= 10;
        int digit = (int)frac;
        print((long)digit);
        frac -= digit;
    }
    return 0;
}
unsigned long micros(void) { return 0; }
int main(void) { setup(); return 0; }
"""


def detector(seed=0, name="sine"):
    """dense (relu) -> dense 1 -> logistic: a one-score detector."""
    b = o.Builder(seed, (6,), name)
    b.dense(9, "relu", per_channel=True)
    b.dense(1, "none")
    b.logistic()
    return b.model()


def small_cnn(seed=1):
    b = o.Builder(seed, (7, 6, 4), "cnn")
    b.conv(5, kernel=(3, 3), padding="same", activation="relu")
    b.depthwise(1, kernel=(3, 3), stride=(2, 2), padding="same")
    b.flatten()
    b.dense(6, "none")
    b.softmax()
    return b.model()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("arduino")
    model = detector()
    codegen.generate(model, d / "sine", name="sine", threshold=0.5)
    return model, d, arduino.export_arduino(d / "sine")


# ---------------------------------------------------------------------------------------
# the library's layout
# ---------------------------------------------------------------------------------------
def test_library_layout_and_properties(exported):
    model, d, lib = exported
    assert os.path.basename(lib) == "MinitinySine" and os.path.dirname(lib) == str(d)
    files = sorted(os.path.relpath(os.path.join(r, f), lib) for r, _, fs in os.walk(lib) for f in fs)
    assert files == ["examples/MinitinySine/MinitinySine.ino", "library.properties",
                     "src/MinitinySine.h", "src/sine_model.c", "src/sine_model.h"]
    props = dict(line.split("=", 1) for line in open(os.path.join(lib, "library.properties")).read().splitlines())
    # the fields of the Arduino Library Specification (1.5 format)
    assert {"name", "version", "author", "maintainer", "sentence", "paragraph", "category", "url",
            "architectures", "includes"} <= set(props)
    assert props["name"] == "MinitinySine" and props["includes"] == "MinitinySine.h"
    assert props["architectures"] == "*"
    assert '#include "sine_model.h"' in open(os.path.join(lib, "src", "MinitinySine.h")).read()
    src = open(os.path.join(lib, "src", "sine_model.c")).read()
    assert "Kernels: auto" in src and "#if defined(__ARM_FEATURE_DSP) && !defined(MINITINY_SCALAR)" in src
    header = open(os.path.join(lib, "src", "sine_model.h")).read()
    assert "SINE_THRESHOLD_Q" in header and "sine_detect" in header      # kept from the manifest


def test_sketch_carries_the_reference_output(exported):
    model, d, lib = exported
    ino = open(os.path.join(lib, "examples", "MinitinySine", "MinitinySine.ino")).read()
    x = np.random.default_rng(0).integers(-128, 128, size=model.input.shape).astype(np.int8)  # seed 0
    want = model.predict_int8(x[None]).reshape(-1)
    assert "{\n  " + ", ".join(str(v) for v in x.tolist()) + "\n}" in ino
    assert "{\n  " + ", ".join(str(v) for v in want.tolist()) + "\n}" in ino
    assert "sine_invoke(test_input, output)" in ino and "sine_detect(output)" in ino


def test_export_refuses_what_it_cannot_export(tmp_path):
    with pytest.raises(arduino.ArduinoExportError, match="not a directory"):
        arduino.export_arduino(tmp_path / "nothing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(arduino.ArduinoExportError, match="no generated model"):
        arduino.export_arduino(empty)
    codegen.generate(detector(), tmp_path / "m", name="m")
    for bad in ("1abc", "has space", "m_model", "a-b"):
        with pytest.raises(arduino.ArduinoExportError, match="library name"):
            arduino.export_arduino(tmp_path / "m", library_name=bad)
    os.remove(tmp_path / "m" / "m.qmodel.npz")
    with pytest.raises(arduino.ArduinoExportError, match="m.qmodel.npz is missing"):
        arduino.export_arduino(tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "m"]      # nothing half-written


def test_export_again_replaces_the_files_and_float_inputs_are_quantized(tmp_path):
    model = detector(3)
    codegen.generate(model, tmp_path / "m", name="m")
    lib = arduino.export_arduino(tmp_path / "m", tmp_path / "lib", "Det")
    x = np.linspace(-1, 1, 6).astype(np.float32)
    lib2 = arduino.export_arduino(tmp_path / "m", tmp_path / "lib", "Det", inputs=x)
    assert lib == lib2
    ino = open(os.path.join(lib, "examples", "Det", "Det.ino")).read()
    q = model.input.quantize(x).astype(int)
    assert ", ".join(str(v) for v in q.tolist()) in ino and "quantized" in ino


def test_command_line_entry(tmp_path, capsys):
    codegen.generate(detector(), tmp_path / "m", name="m")
    assert arduino.main([str(tmp_path / "m"), "--out", str(tmp_path / "L"), "--name", "Lib"]) == 0
    assert (tmp_path / "L" / "examples" / "Lib" / "Lib.ino").is_file()
    assert arduino.main([str(tmp_path / "nowhere")]) == 1
    assert "not a directory" in capsys.readouterr().err
    from minitiny import cli                 # `minitiny export arduino` delegates here
    assert cli.main(["export", "arduino", str(tmp_path / "m"), "--out", str(tmp_path / "C")]) == 0
    assert (tmp_path / "C" / "library.properties").is_file()


# ---------------------------------------------------------------------------------------
# built with the Nano 33 BLE's flags, and run
# ---------------------------------------------------------------------------------------
def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0, f"$ {' '.join(cmd)}\n{p.stdout}{p.stderr}"


def build_library(lib, work, library):
    """Compile the library and its example as the Arduino mbed core would, link them with
    the stand-in core and minitiny's runtime for QEMU's Cortex-M4; return the ELF."""
    work.mkdir(exist_ok=True)
    (work / "Arduino.h").write_text(ARDUINO_H)
    (work / "stub.cpp").write_text(STUB_CPP)
    ino = open(os.path.join(lib, "examples", library, f"{library}.ino")).read()
    (work / "sketch.ino.cpp").write_text(f'#include <Arduino.h>\n#line 1 "{library}.ino"\n' + ino)
    src = os.path.join(lib, "src")
    includes = ["-I", str(work), "-I", src, "-I", FIRMWARE]
    objects = []

    def compile_(cc, flags, source):
        obj = str(work / (os.path.basename(source) + ".o"))
        run([cc] + flags + STRICT + includes + [source, "-o", obj])
        objects.append(obj)
    for c in sorted(os.listdir(src)):
        if c.endswith(".c"):
            compile_(GCC, arduino.NANO33BLE_CFLAGS, os.path.join(src, c))
    compile_(GXX, arduino.NANO33BLE_CXXFLAGS, str(work / "sketch.ino.cpp"))
    compile_(GXX, arduino.NANO33BLE_CXXFLAGS, str(work / "stub.cpp"))
    for c in ("startup.c", "semihosting.c"):    # the emulator's runtime (no C library behind it)
        compile_(GCC, arduino.NANO33BLE_CFLAGS + ["-ffreestanding", "-fno-tree-loop-distribute-patterns"],
                 os.path.join(FIRMWARE, c))
    elf = str(work / "sketch.elf")
    run([GCC, "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=softfp", "-mfpu=fpv4-sp-d16",
         "-nostdlib", "-T", os.path.join(FIRMWARE, "link.ld"), "-Wl,--gc-sections",
         "-Wl,--defsym=__flash_size=1048576", "-Wl,--defsym=__ram_size=262144",   # Nano 33 BLE
         "-Wl,--defsym=__stack_size=8192", "-Wl,--defsym=__testdata_origin=0x21000000",
         "-Wl,--defsym=__testdata_size=0x1000"] + objects + ["-lgcc", "-o", elf])
    return elf


def run_qemu(elf):
    p = subprocess.run([QEMU, "-machine", "mps2-an386", "-nographic", "-monitor", "none", "-serial", "none",
                        "-semihosting-config", "enable=on,target=native", "-kernel", elf],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def printed_outputs(text, n, name="output"):
    lines = text.splitlines()
    start = lines.index(f"{name}  int8  real value") + 1
    return [int(line.split()[1]) for line in lines[start:start + n]]


@needs_gcc
def test_library_compiles_with_the_nano33ble_flags(exported, tmp_path):
    model, d, lib = exported
    build_library(lib, tmp_path, "MinitinySine")
    # and with MINITINY_SCALAR, the plain C kernels under the same flags
    out = subprocess.run([GCC] + arduino.NANO33BLE_CFLAGS + STRICT + ["-DMINITINY_SCALAR", "-I",
                          os.path.join(lib, "src"), os.path.join(lib, "src", "sine_model.c"),
                          "-o", str(tmp_path / "scalar.o")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@needs_gcc
@needs_qemu
@pytest.mark.parametrize("which", ["detector", "cnn"])
def test_example_sketch_runs_on_the_emulated_cortex_m4(which, tmp_path):
    model = detector(5) if which == "detector" else small_cnn()
    kwargs = {"threshold": 0.5} if which == "detector" else {}
    codegen.generate(model, tmp_path / "m", name="m", **kwargs)
    lib = arduino.export_arduino(tmp_path / "m", tmp_path / "Lib", "Lib", seed=7)
    text = run_qemu(build_library(lib, tmp_path / "build", "Lib"))
    x = np.random.default_rng(7).integers(-128, 128, size=model.input.shape).astype(np.int8)
    want = model.predict_int8(x[None]).reshape(-1)
    assert printed_outputs(text, want.size) == want.tolist(), text
    assert "matches the reference: yes" in text
    if which == "detector":
        fires = float(model.output.dequantize(want[0])) >= 0.5
        assert f"detected (score >= 0.5): {'yes' if fires else 'no'}" in text
    assert QModel.load(os.path.join(tmp_path, "m", "m.qmodel.npz")).name == model.name


@needs_gcc
@needs_qemu
def test_example_sketch_of_a_model_with_several_inputs_and_outputs(tmp_path):
    """Two inputs, three outputs: test_input0/1 and expected_output0..2 in the sketch, every
    output printed under its name and compared with the NumPy reference."""
    from minitiny.testing.models import multi_io_model
    model = multi_io_model(9, 2, 3)
    codegen.generate(model, tmp_path / "m", name="m")
    rng = np.random.default_rng(3)
    floats = [rng.normal(0, 1, (2,) + model.tensors[n].shape).astype(np.float32) for n in model.inputs]
    lib = arduino.export_arduino(tmp_path / "m", tmp_path / "Lib", "Lib", inputs=floats)
    text = run_qemu(build_library(lib, tmp_path / "build", "Lib"))
    want = model.predict_int8([model.tensors[n].quantize(f[:1]) for n, f in zip(model.inputs, floats)])
    for k, y in enumerate(want):
        assert printed_outputs(text, y.size, f"output{k}") == y.reshape(-1).tolist(), text
    assert "matches the reference: yes" in text
    with pytest.raises(arduino.ArduinoExportError, match="has 2 inputs .* list of 2 arrays"):
        arduino.export_arduino(tmp_path / "m", tmp_path / "Lib2", "Lib2", inputs=floats[0])


# ---------------------------------------------------------------------------------------
# the detector's threshold in the generated header (codegen.generate(threshold=...)), which
# the sketch prints: the C decision on every int8 output == the float decision on it
# ---------------------------------------------------------------------------------------
DETECT_MAIN = r"""
#include <stdio.h>
#include "m_model.h"
int main(void)
{
    for (int q = -128; q <= 127; q++) {
        const int8_t output[M_OUTPUT_SIZE] = {(int8_t)q};
        printf("%d %d\n", q, m_detect(output));
    }
    printf("constant %d\n", (int)M_WAKE_Q);
    return 0;
}
"""


def scored(scale, zero_point, seed=0):
    """dense 4 -> 1 with the given output quantization: a one-score detector."""
    b = o.Builder(seed, (4,), "det")
    b.dense(1, "none")
    model = b.model()
    out = model.tensors[model.outputs[0]]
    from minitiny.quant.graph import QTensor
    model.tensors[out.name] = QTensor(out.name, out.shape, "int8", np.float32(scale), np.int32(zero_point))
    return QModel(model.name, model.tensors, model.ops, model.inputs, model.outputs)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
@pytest.mark.parametrize("scale, zero_point", [(1 / 256, -128), (0.0173, 5), (0.5, 127), (3e-4, -40)])
def test_threshold_decision_in_c_equals_the_float_decision(scale, zero_point, tmp_path):
    model = scored(scale, zero_point)
    y = model.output
    real = y.dequantize(np.arange(-128, 128)).astype(np.float64)    # what QModel.predict gives
    # thresholds on grid points (the >= must include them), between them, near both ends
    candidates = [real[200], real[129], (real[60] + real[61]) / 2, real[1], real[255],
                  np.nextafter(real[100], np.inf), np.nextafter(real[100], -np.inf)]
    for i, threshold in enumerate(candidates):
        d = tmp_path / str(i)
        g = codegen.generate(model, d, name="m", threshold=float(threshold), threshold_name="WAKE")
        assert g.manifest["threshold"]["macro"] == "M_WAKE_Q"
        (d / "main.c").write_text(DETECT_MAIN)
        exe = str(d / "detect")
        subprocess.run(["gcc"] + ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I", str(d),
                                  str(d / "main.c"), "-o", exe], check=True)
        lines = subprocess.run([exe], capture_output=True, text=True, check=True).stdout.splitlines()
        fires = [int(line.split()[1]) for line in lines[:256]]
        assert fires == (real >= float(threshold)).astype(int).tolist(), threshold
        assert int(lines[256].split()[1]) == g.manifest["threshold"]["q"]
        assert fires.index(1) == g.manifest["threshold"]["q"] + 128


def test_threshold_is_refused_where_it_cannot_work(tmp_path):
    model = scored(1 / 256, -128)
    with pytest.raises(codegen.CodegenError, match="always fire"):
        codegen.generate(model, tmp_path / "a", threshold=-1.0)
    with pytest.raises(codegen.CodegenError, match="above the largest int8 output"):
        codegen.generate(model, tmp_path / "b", threshold=2.0)
    with pytest.raises(codegen.CodegenError, match="not a C identifier"):
        codegen.generate(model, tmp_path / "c", threshold=0.5, threshold_name="my threshold")
    with pytest.raises(codegen.CodegenError, match="one output value"):
        codegen.generate(small_cnn(), tmp_path / "d", threshold=0.5)
    assert not any(tmp_path.iterdir())

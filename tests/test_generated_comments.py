"""The comments of the generated C say what the code does (issue 17 item 7).

Every template of every kernel variant is rendered for a set of models (test_equivalence's
fixed Cortex-M4 models, dense layers whose unit counts reach both loops of the tuned kernel
or only one, conv and depthwise layers below and past a multiple of 4 channels, a max pool
on one channel, the chain of every data-movement kind), and the C is read back:

* no run-together lines (a lost newline once left `..._output_shift[] *   input_offset 128`),
  no empty block `{}`, no parentheses around a lone operand (`* (input[in_channel])`);
* each layer's banner describes the loops actually emitted: a "four at a time" comment only
  beside a loop that steps by 4, a "the last N ... one at a time" only beside the remainder
  loop with N the layer's count mod 4 (read from the banner's sizes), and every such loop
  with its comment; the parameter lines grouped by meaning (a window line holds only window
  parameters, ...); a reference layer calls the generic kernel its banner names.
"""
import os
import re
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
import int8_oracle as o  # noqa: E402
import test_equivalence as E  # noqa: E402
from test_data_movement import movement_chain  # noqa: E402
from minitiny.codegen import elementwise, generator, templating  # noqa: E402


def one_channel_max_pool():
    import minitiny as mt
    mt.random.seed(0)
    m = mt.Sequential([mt.layers.MaxPooling2D(2, input_shape=(4, 4, 1))], name="max pool")
    return mt.quantize(m, np.random.default_rng(0).normal(size=(16, 4, 4, 1)).astype(np.float32))


def models():
    out = {label: E.build(*spec) for label, spec in E.M4_MODELS.items() if not label.startswith("random")}
    for units in (1, 2, 4, 9):        # only the remainder loop, only the loop of fours, both
        out[f"dense {units}"] = o.single_op_model(units, "fully_connected", (12,), units=units, per_channel=True)
    for channels in (3, 4, 6):
        out[f"conv {channels}"] = o.single_op_model(channels, "conv_2d", (5, 5, 2), out_c=channels,
                                                    kernel=(3, 3), padding="same")
        out[f"depthwise {channels}"] = o.single_op_model(channels, "depthwise_conv_2d", (5, 5, channels),
                                                         depth_multiplier=1, kernel=(3, 3), padding="same")
    out["max pool, one channel"] = one_channel_max_pool()
    out["data movement"] = movement_chain(0)
    out["spatial ops"] = o.spatial_model()
    out["more ops"] = o.more_ops_model()
    out["lstm"] = o.lstm_model(4, 3, 2, 5)
    return out


MODELS = models()
VARIANTS = sorted(generator.KERNEL_VARIANTS)


@pytest.fixture(scope="module")
def rendered():
    """{(label, variant): (context, C text)} for every model and variant."""
    out = {}
    for label, model in MODELS.items():
        for variant in VARIANTS:
            context = generator.build_context(model, "m", variant)
            out[label, variant] = context, generator.render(context)["m_model.c"]
    return out


def test_every_template_of_every_variant_is_rendered(rendered):
    used = set()
    for context, _ in rendered.values():
        used.update(context["kernels"])
        for layer in context["layers"]:
            used.update(t for t in (layer["template"], layer["dsp_template"]) if t)
    wanted = {t for variant in generator.KERNEL_VARIANTS.values() for t in variant.values()}
    assert wanted <= used, sorted(wanted - used)
    assert all(t in templating.template_paths() for t in wanted)


def test_no_run_together_lines_empty_blocks_or_lone_parentheses(rendered):
    for (label, variant), (_, c) in rendered.items():
        where = f"{label} ({variant})"
        for line in c.splitlines():
            # a comment's continuation marker after other text on the same line
            assert not re.search(r"\S\s+\*\s{3}\w", line), f"{where}: run-together line: {line!r}"
            assert line.count("/*") <= 1 and line.count("*/") <= 1, f"{where}: two comments: {line!r}"
        assert not re.search(r"\{\s*\}", c), f"{where}: an empty block"
        lone = re.search(r"\* \((\w+(\[[^\]\[()+\-*/]+\])?)\)(?=\s*[;),])", c)     # not a cast
        assert not lone, f"{where}: parentheses around a lone operand: {lone.group(0)!r}"


def sections(c):
    """[(banner, code)] per layer: the banner comment and the code up to the next layer."""
    parts = re.split(r"(?m)^/\* =+\n \* Layer \d+: ", c)[1:]
    out = []
    for part in parts:
        banner, _, code = part.partition(" * ========================================================================================== */")
        out.append((banner, code.split("/* ==========================================================================================\n * The entry point")[0]))
    return out


def banner_sizes(banner):
    line = re.search(r"(?m)^ \*\s+sizes:\s+(.*)$", banner)
    return dict((k, int(v)) for k, v in re.findall(r"(\w+) (-?\d+)", line.group(1))) if line else {}


CATEGORY = [("window", r"^(kernel|pool|stride|pad)_"), ("clamp", r"^(act_|lower$|upper$)"),
            ("zero points", r"(offset|zero_point)$"), ("requantization", r"^(?!depth_).*(multiplier|shift)$")]


def category(name):
    return next((group for group, pattern in CATEGORY if re.search(pattern, name)), "sizes")


# The reference kernels named after TFLM's functions rather than the op kind: the element-wise
# loops with the op's per-element function, and the activations' own functions.
KERNEL_CALLS = {
    **{kind: rf"\b(ElementWise\(\d+, |BroadcastBinaryFunction4DSlow\()&\w+_params\b.*\b{function}\);"
       for kind, function in elementwise.FUNCTIONS.items()},
    "prelu": r"\bBroadcastPrelu4DSlow\(&\w+_params\b", "leaky_relu": r"\bQuantizeLeakyRelu\(&\w+_params\b",
    "hard_swish": r"\bHardSwish\(&\w+_params\b",
    **{kind: r"\bLookupTable\(\d+, \w+_table\b" for kind in ("elu", "abs", "rsqrt", "neg", "square")},
    "l2_normalization": r"\bl2_normalization\(\d+, \d+, -?\d+, input, output\)",
}


def test_banners_describe_the_loops_emitted(rendered):
    checked = 0
    for (label, variant), (_, c) in rendered.items():
        for banner, code in sections(c):
            where = f"{label} ({variant}), layer {banner.splitlines()[0]}"
            comments = " ".join(re.findall(r"/\*(.*?)\*/", banner + code, re.S))
            comments = re.sub(r"\s*\n\s*\*?\s*", " ", comments)
            fours = re.search(r"four (units|output channels|input channels) at a time", comments, re.I)
            steps_by_4 = re.search(r"\b(out_channel|in_channel) \+= 4\)", code)
            assert bool(fours) == bool(steps_by_4), f"{where}: comment {fours and fours.group(0)!r}, loop of fours {bool(steps_by_4)}"
            last = re.search(r"the last (\d+) (unit|output channel|input channel)s?, one at a time", comments)
            if last:
                sizes = banner_sizes(banner)
                count = {"unit": sizes.get("out_features"), "output channel": sizes.get("out_c"),
                         "input channel": sizes.get("in_c")}[last.group(2)]
                assert count is not None, f"{where}: {last.group(0)!r}, but the banner gives no such size"
                assert int(last.group(1)) == count % 4, f"{where}: {last.group(0)!r} with {count}"
                assert re.search(r"; \+\+(out_channel|in_channel)\) \{", code), f"{where}: no remainder loop"
            # the parameter lines, one group each
            for group, names in re.findall(r"(?m)^ \*\s{3}(sizes|window|zero points|requantization|clamp|other):\s+(.*)$", banner):
                for name in re.findall(r"(\w+) -?\d+", names):
                    assert group == "other" or category(name) == group, f"{where}: {name} on the {group} line"
            # a reference layer calls the generic kernel its banner names (kinds that share one,
            # as pack and concatenation, call the kernel their template is named after)
            kind = re.match(r"\S+ \((\w+)", banner).group(1)
            if variant == "reference" and kind in generator.REFERENCE_KERNELS:
                kernel = os.path.basename(generator.REFERENCE_KERNELS[kind][-1]).split(".")[0]
                call = KERNEL_CALLS.get(kind, rf"\b{kernel}\(&\w+_params\b")
                assert re.search(call, code, re.S), f"{where}: no call of {kind}'s kernel ({call})"
            checked += 1
    assert checked > 100

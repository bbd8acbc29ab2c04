"""What a C generator hands back, and how it writes: both generators (generator.py for int8,
float_codegen.py for float32) and the audio front end share these.

Files are rendered in memory first, then written to a temporary directory and moved into
place only when all of them succeeded, so a failure never leaves half a model behind.
"""
import os

from minitiny.files import atomic_folder

GENERATOR = "minitiny.codegen"      # the stamp at the top of every generated file


class CodegenError(ValueError):
    """The model cannot be turned into C: names the model, layer and what is wrong."""


def write_atomically(out_dir, files):
    """Write {name: bytes | function(path)} as the folder out_dir, all or nothing."""
    return atomic_folder(out_dir, files)


class Generated:
    """What `generate` wrote: the directory, the file paths and the manifest."""

    def __init__(self, out_dir, files, manifest):
        self.dir, self.files, self.manifest = out_dir, files, manifest
        self.name = manifest["name"]
        self.header = os.path.join(out_dir, manifest["header"])
        self.source = os.path.join(out_dir, manifest["source"])

    def __repr__(self):
        m = self.manifest
        return (f"Generated({self.name!r} in {self.dir!r}: arena {m['arena_bytes']} B "
                f"(lower bound {m['arena_lower_bound']}), weights {m['weight_bytes']} B)")

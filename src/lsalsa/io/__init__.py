"""Writing files safely: atomic writes and the clean-up of what killed runs left behind
(:mod:`.atomic`), arrays, text and JSON (:mod:`.files`), and safetensors files sealed with
checksums (:mod:`.sealed`)."""

from .atomic import (
    TEMPORARY,
    Temporary,
    atomic_path,
    check_output_path,
    remove_stale_temporaries,
    replace_folder,
    staging_folder,
)
from .files import (
    check_finite_output,
    load_npy,
    read_array,
    read_json_object,
    save_npy,
    write_json,
    write_text,
)
from .sealed import (
    DIGEST,
    MANIFEST,
    read_safetensors,
    verify_header,
    verify_tensors,
    write_safetensors,
)

__all__ = ["DIGEST", "MANIFEST", "TEMPORARY", "Temporary", "atomic_path", "check_finite_output",
           "check_output_path", "load_npy", "read_array", "read_json_object",
           "read_safetensors", "remove_stale_temporaries", "replace_folder", "save_npy",
           "staging_folder", "verify_header", "verify_tensors", "write_json",
           "write_safetensors", "write_text"]

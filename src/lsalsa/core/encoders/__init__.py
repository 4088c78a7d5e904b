"""Learned encoders: LISTA and LSALSA, unrolled ISTA and SALSA (:mod:`.networks`), their T
layers as one loop (:mod:`.layers`) and their model file (:mod:`.model_file`)."""

from .layers import fused_unroll, unroll
from .model_file import FORMAT, FORMAT_VERSION, KINDS, read_model_header
from .networks import LISTA, LSALSA, UnrolledEncoder, build_encoder, components, load_encoder

__all__ = ["FORMAT", "FORMAT_VERSION", "KINDS", "LISTA", "LSALSA", "UnrolledEncoder",
           "build_encoder", "components", "fused_unroll", "load_encoder", "read_model_header",
           "unroll"]

"""``lsalsa encode``: codes of a (possibly huge) .npy of signals with a trained encoder."""

from __future__ import annotations

from ..apps.streaming import EncodeFileSettings, encode_file
from ..core._arrays import resolve_device
from ..core.encoders import load_encoder
from ..core.operators import inference_dtype
from ..io import check_output_path
from .options import add_option_flags


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "encode", help="encode signals (.npy, any size) with a trained model",
        description="Encode every row of IN (B, M) with MODEL and write the codes (B, N), "
                    "float32, to OUT. Reads and writes in chunks, so files larger than memory "
                    "work; OUT appears only when all rows are done.")
    parser.add_argument("input", metavar="IN.npy")
    parser.add_argument("output", metavar="OUT.npy")
    parser.add_argument("--model", required=True, help="model file (.safetensors)")
    add_option_flags(parser, EncodeFileSettings, ("chunk_size",))
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", default=None,
                        help="precision of the products: float32 (the model's own, default), "
                             "bfloat16 (fast on CPUs with AVX-512 BF16 or AMX, and on CUDA), "
                             "float16 (CUDA only); thresholds and codes stay float32")
    add_option_flags(parser, EncodeFileSettings, ("fused",))
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args) -> int:
    out = check_output_path(args.output, [args.input, args.model])
    device = resolve_device(args.device)
    inference_dtype(args.dtype, device)  # refused before the model is read
    encoder = load_encoder(args.model, device=device)
    dtype = inference_dtype(args.dtype, device, encoder.W.dtype)
    rows, width = encode_file(encoder, args.input, out, chunk_size=args.chunk_size,
                              progress=not args.quiet, dtype=dtype, fused=args.fused)
    precision = ("" if dtype is None else f", products in {args.dtype}") + (
        ", fused layers" if args.fused else "")
    print(f"wrote {out} ({rows} x {width} codes, {encoder.kind} T={encoder.depth}"
          f"{precision})")
    return 0

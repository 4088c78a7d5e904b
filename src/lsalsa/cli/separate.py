"""``lsalsa separate``: split images into their morphological components."""

from __future__ import annotations

from ..apps.separation import SeparateFilesSettings, separate_files
from ..core._arrays import resolve_device
from ..core.encoders import load_encoder
from ..core.operators import inference_dtype
from .options import add_option_flags


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "separate", help="separate images into components with a trained MCA model",
        description="Split each IMAGE (any format Pillow reads, 8-bit, 16-bit or float in "
                    "[0, 1]; colour becomes luminance) into "
                    "one image per dictionary of MODEL, and write them with a side-by-side "
                    "picture into --out.")
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("--model", help="MCA model file (.safetensors); default: the model "
                                         "shipped with lsalsa (digits and photographs, "
                                         "trained on the true components of whole-picture "
                                         "mixtures)")
    parser.add_argument("--out", default="separated", help="output folder (default: separated)")
    add_option_flags(parser, SeparateFilesSettings,
                     ("stride", "batch_size", "max_pixels", "residual"))
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", default=None,
                        help="precision of the products: float32 (the model's own, default), "
                             "bfloat16 (fast on CPUs with AVX-512 BF16 or AMX, and on CUDA), "
                             "float16 (CUDA only); thresholds and codes stay float32")
    add_option_flags(parser, SeparateFilesSettings, ("fused",))
    parser.set_defaults(func=run)


def run(args) -> int:
    device = resolve_device(args.device)
    inference_dtype(args.dtype, device)  # refused before the model is read
    if args.model is None:
        from ..apps.shipped import card_summary, load_shipped

        encoder, card = load_shipped(device)
        print(f"model: {card_summary(card)}")
        inputs = []
    else:
        encoder = load_encoder(args.model, device=device)
        inputs = [args.model]
    written = separate_files(encoder, args.images, args.out, stride=args.stride,
                             batch_size=args.batch_size, max_pixels=args.max_pixels,
                             inputs=inputs, residual=args.residual,
                             dtype=inference_dtype(args.dtype, device, encoder.W.dtype),
                             fused=args.fused)
    for path in written:
        if path.name.endswith("_separation.png"):
            print(f"wrote {path}")
    print(f"{len(written)} files in {args.out}")
    return 0

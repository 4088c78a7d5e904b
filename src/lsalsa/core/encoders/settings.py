"""The options of encoding with a trained encoder (:meth:`UnrolledEncoder.encode
<lsalsa.core.encoders.networks.UnrolledEncoder.encode>`), declared once: the commands that
encode (``lsalsa encode``, ``lsalsa separate``) make their flags from them."""

from __future__ import annotations

from dataclasses import dataclass

from ...checks import check_fields, flag, positive_int, rule


@dataclass(frozen=True)
class EncodeSettings:
    """How a batch of signals is encoded, checked when made."""

    batch_size: int = rule(positive_int, 65536,
                           help="signals encoded at once; bounds the memory")
    fused: bool = rule(flag, False,
                       help="fuse each layer's elementwise work with torch.compile (the first "
                            "batch compiles, seconds to a minute; worth it for many signals)")

    def __post_init__(self):
        check_fields(self)

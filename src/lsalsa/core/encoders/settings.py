"""The options of an encoder, declared once: how it is built (:class:`EncoderSettings`;
``lsalsa train`` makes its flags from them) and how it encodes (:class:`EncodeSettings`;
``lsalsa encode`` and ``lsalsa separate``)."""

from __future__ import annotations

from dataclasses import dataclass

from ...checks import Settings, flag, one_of, positive_int, rule

# The encoders there are (a model file of another kind is refused).
KINDS = ("lista", "lsalsa")


@dataclass(frozen=True)
class EncoderSettings(Settings):
    """How an encoder is built (:func:`~lsalsa.core.encoders.networks.build_encoder`),
    checked when made; its ``mu`` is LSALSA's own (:func:`~lsalsa.core.problem.check_mu`)."""

    depth: int = rule(positive_int, help="layers T")
    kind: str = rule(one_of, "lsalsa", choices=KINDS, help="the encoder: LISTA or LSALSA")
    untied: bool = rule(flag, False, help="one S per layer (the paper ties them)")
    learn_thresholds: bool = rule(flag, True,
                                  help="learned per-coordinate thresholds (the paper's are "
                                       "fixed)")


@dataclass(frozen=True)
class EncodeSettings(Settings):
    """How a batch of signals is encoded, checked when made."""

    batch_size: int = rule(positive_int, 65536,
                           help="signals encoded at once; bounds the memory")
    fused: bool = rule(flag, False,
                       help="fuse each layer's elementwise work with torch.compile (the first "
                            "batch compiles, seconds to a minute; worth it for many signals)")


from netloom._native import Decoder as Decoder, Encoder as Encoder

__all__ = ["Decoder", "Encoder"]

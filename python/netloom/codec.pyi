from netloom._native import Decoder as Decoder, Encoder as Encoder, framers as framers

__all__ = ["Decoder", "Encoder", "framers"]

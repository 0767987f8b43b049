from .large_separable_conv import LargeSeparableConv

__all__ = ['LargeSeparableConv']

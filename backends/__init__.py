"""Storage and presence implementations of the interfaces in ``coffeechat.interfaces``."""

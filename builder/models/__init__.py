"""Models: operator lists (ops), lite-interpreter export (export), on-build verification (verify).

torch is imported lazily inside functions only, so importing this package is cheap.
"""

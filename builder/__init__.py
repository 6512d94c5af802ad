"""builder: source-build automation for mobile PyTorch."""
__version__ = "0.1.0"

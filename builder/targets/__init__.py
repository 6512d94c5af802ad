"""builder: source-build automation for mobile PyTorch."""

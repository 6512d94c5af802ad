"""A MobileNetV2-style model for the real-PyTorch benchmark, defined here (no torchvision, no download).

Inverted residual blocks (1x1 expand, 3x3 depthwise, 1x1 linear projection), BatchNorm, ReLU6,
adaptive average pooling and a linear classifier; random weights and BatchNorm statistics from a seed.

    python benchmarks/mobilenet_model.py OUT_DIR [--seed 0] [--bytecode-max 8] [--checkout TREE]

writes OUT_DIR/mobilenet_v2.pt (scripted), mobilenet_v2.ptl (lite interpreter, bytecode <= --bytecode-max;
v1.13.1 produces v8 and loads up to v9), mobilenet_v2.ops.yaml (plain SELECTED_OP_LIST, validated against
--checkout when given), mobilenet_v2.inputs.bt (a seeded 1x3xSxS input) and prints a JSON summary.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# (expansion t, output channels c, repeats n, stride s) of MobileNetV2 (Sandler et al. 2018, table 2)
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
            (6, 320, 1, 1))


def _divisible(value: float, divisor: int = 8) -> int:
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class ConvBNReLU6(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> None:
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_residual = stride == 1 and cin == cout
        layers: list[nn.Module] = [ConvBNReLU6(cin, hidden, kernel=1)] if expand != 1 else []
        layers += [ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),  # depthwise
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]   # linear bottleneck
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_residual:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes: int = 1000, width: float = 1.0) -> None:
        super().__init__()
        cin = _divisible(32 * width)
        last = _divisible(1280 * max(1.0, width))
        features: list[nn.Module] = [ConvBNReLU6(3, cin, stride=2)]
        for t, c, n, s in SETTINGS:
            cout = _divisible(c * width)
            for i in range(n):
                features.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        features.append(ConvBNReLU6(cin, last, kernel=1))
        self.features = nn.Sequential(*features)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def build_model(seed: int = 0, num_classes: int = 1000, width: float = 1.0) -> MobileNetV2:
    """The network with seeded random weights and BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    model = MobileNetV2(num_classes, width)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0.0, 0.1, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.normal_(0.0, 0.1, generator=generator)
    return model.eval()


def write_all(out_dir: Path, *, seed: int = 0, bytecode_max: int = 8, size: int = 224,
              checkout: Path | None = None, num_classes: int = 1000, width: float = 1.0) -> dict[str, object]:
    """Write the .pt, .ptl, op list and an input file; return a summary."""
    from builder.models import export, ops, verify

    out_dir.mkdir(parents=True, exist_ok=True)
    scripted = torch.jit.script(build_model(seed, num_classes, width))
    pt = out_dir / "mobilenet_v2.pt"
    scripted.save(str(pt))
    result = export.export_model(pt, out_dir / "mobilenet_v2.ptl", export.ExportTarget(bytecode_max=bytecode_max),
                                 optimize=False)
    oplist = ops.collect_ops([pt])
    if checkout is not None:
        ops.validate_ops(oplist.names, ops.load_known_ops(checkout))
    ops_path = ops.write_op_list(oplist, out_dir / "mobilenet_v2.ops.yaml")
    inputs_path = out_dir / "mobilenet_v2.inputs.bt"
    verify.write_tensors(inputs_path, verify.make_inputs([(1, 3, size, size)], seed))
    return {"pt": str(pt), "ptl": str(result.output), "ops": str(ops_path), "inputs": str(inputs_path),
            "bytecode_version": result.bytecode_version, "torch_bytecode_version": result.torch_bytecode_version,
            "torch": result.torch_version, "operators": list(oplist.names),
            "parameters": sum(p.numel() for p in scripted.parameters())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bytecode-max", type=int, default=8)
    parser.add_argument("--size", type=int, default=224, help="input height and width")
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--checkout", type=Path, help="PyTorch source tree to validate the op list against")
    args = parser.parse_args(argv)
    import warnings

    from builder.errors import BuilderError

    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        summary = write_all(args.out_dir, seed=args.seed, bytecode_max=args.bytecode_max, size=args.size,
                            checkout=args.checkout, num_classes=args.classes, width=args.width)
    except BuilderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

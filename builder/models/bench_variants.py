"""Model variants per PyTorch Mobile's performance recipe, made with ``builder export`` from a TorchScript model,
for ``builder bench --variants`` to measure side by side:

* ``exported``: the model exported for the release as it is (no optimize_for_mobile): the baseline row;
* ``optimize_for_mobile``: conv-bn folding, prepacked XNNPACK convolutions/linears, op fusion (only where the
  torch at hand has XNNPACK: torch 2.13's CPU wheel on x86 has not, and says so);
* ``channels_last input``: the best of the two above fed NHWC inputs (``--input_memory_format=channels_last``),
  only for 4-D inputs given by shape;
* ``dynamic quantization``: ``torch.ao.quantization.quantize_dynamic_jit`` of every ``nn.Linear`` (qint8 weights,
  QNNPACK, the engine a mobile build has), then exported as above. The TorchScript path quantizes Linear only;
  an LSTM needs the eager model (``quantize_dynamic``) and is reported, not quantized.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.errors import UsageError
from builder.models import _torch
from builder.models.export import ExportTarget, export_model

log = logging.getLogger("builder")


@dataclass(frozen=True)
class Variant:
    name: str
    model: Path | None           # None: not made here (``note`` says why)
    channels_last: bool = False
    note: str = ""


def make_variants(model: Path, out_dir: Path, target: ExportTarget, inputs_4d: bool) -> tuple[Variant, ...]:
    """Export the variants of the TorchScript ``model`` into ``out_dir``."""
    if _torch.model_kind(model) != "torchscript":
        raise UsageError(f"--variants makes its variants from the TorchScript model; {model} is a lite-interpreter "
                         "file", hint="pass the .pt the .ptl was exported from")
    out_dir.mkdir(parents=True, exist_ok=True)
    plain = export_model(model, out_dir / "exported.ptl", target, optimize=False).output
    variants = [Variant("exported", plain)]
    optimized: Path | None = None
    try:
        optimized = export_model(model, out_dir / "optimized.ptl", target, optimize=True).output
        variants.append(Variant("optimize_for_mobile", optimized))
    except UsageError as exc:
        variants.append(Variant("optimize_for_mobile", None, note=str(exc)))
    if inputs_4d:
        variants.append(Variant("channels_last input", optimized or plain, channels_last=True,
                                note="" if optimized else "on the exported model (no optimize_for_mobile here)"))
    else:
        variants.append(Variant("channels_last input", None, note="needs 4-D inputs given with --shapes"))
    variants.append(_quantized(model, out_dir, target, optimize=optimized is not None))
    return tuple(variants)


def module_kinds(scripted: Any) -> frozenset[str]:
    """The original class names of a ScriptModule's submodules (``Linear``, ``LSTM``, ``Conv2d`` ...)."""
    return frozenset(str(getattr(m, "original_name", type(m).__name__)) for _, m in scripted.named_modules())


def _quantized(model: Path, out_dir: Path, target: ExportTarget, optimize: bool) -> Variant:
    name = "dynamic quantization (Linear)"
    t = _torch.torch()
    scripted = _torch.load_torchscript(model)
    kinds = module_kinds(scripted)
    if "Linear" not in kinds:
        why = ("its LSTM needs the eager model: torch's TorchScript dynamic quantization (quantize_dynamic_jit) "
               "covers nn.Linear only" if "LSTM" in kinds else "the model has no nn.Linear or nn.LSTM")
        return Variant(name, None, note=why)
    from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic_jit

    engine = t.backends.quantized.engine
    try:
        if "qnnpack" in t.backends.quantized.supported_engines:
            t.backends.quantized.engine = "qnnpack"     # what a mobile build runs (and packs for)
        with _torch.quiet():
            quantized = quantize_dynamic_jit(scripted, {"": default_dynamic_qconfig})  # type: ignore[no-untyped-call]
        out = export_model(quantized, out_dir / "dynamic_quant.ptl", target, optimize=optimize).output
    except UsageError as exc:
        return Variant(name, None, note=str(exc))
    except Exception as exc:  # noqa: BLE001 - torch raises many types (RuntimeError, AssertionError, C++ errors)
        return Variant(name, None, note=f"torch {t.__version__} could not quantize it: {_torch.first_line(exc)}")
    finally:
        t.backends.quantized.engine = engine
    return Variant(name, out, note="" if optimize else "not optimize_for_mobile'd (no XNNPACK in this torch)")

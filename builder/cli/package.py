"""CLI: package (AAR, ABI parts, iOS xcframework, host SDK), assemble (an AAR from per-ABI parts), report."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from .app import _console, app, guarded, settings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..package.aar import AarSpec, LibReport

package_app = typer.Typer(help="Package build outputs (reproducible, with manifests).", no_args_is_help=True)
app.add_typer(package_app, name="package")

ClassesJar = Annotated[Path, typer.Option(help="classes.jar (org.pytorch.*) to ship.")]
JniLib = Annotated[str, typer.Option(help="JNI library name.")]
RuntimeLibs = Annotated[Optional[list[str]], typer.Option(help="Runtime library each ABI ships (repeatable).")]
SharedStl = Annotated[bool, typer.Option(help="Ship libc++_shared.so.")]
Epoch = Annotated[Optional[int], typer.Option(help="Timestamp for archive entries (default SOURCE_DATE_EPOCH, else 1980).")]


def _epoch(value: int | None) -> int:
    """--epoch, else the SOURCE_DATE_EPOCH setting, else 1980 (archive.source_date_epoch: the one resolver)."""
    from ..package.archive import source_date_epoch

    return source_date_epoch(value if value is not None else settings().source_date_epoch)


def _pairs(items: list[str] | None, what: str) -> dict[str, Path]:
    from ..errors import UsageError

    out: dict[str, Path] = {}
    for item in items or ():
        if "=" not in item:
            raise UsageError(f"{what} {item}: expected NAME=PATH")
        name, path = item.split("=", 1)
        if name in out:
            raise UsageError(f"{what} {name} given twice")
        out[name] = Path(path)
    return out


def _aar_spec(abis: tuple[str, ...], jni_lib: str, runtime_lib: list[str] | None, shared_stl: bool,
              require_16k: bool) -> AarSpec:
    from ..package.aar import AarSpec

    return AarSpec(abis=abis, jni_lib=jni_lib, runtime_libs=tuple(runtime_lib or ()), shared_stl=shared_stl,
                   require_16k=require_16k)


def _report_libs(libs: Sequence[LibReport]) -> None:
    console = _console()
    for lib in libs:
        flag = "" if lib.aligned_16k else "  [yellow]not 16 KB aligned[/]"
        console.print(f"  {lib.abi:<12} {lib.name:<28} {lib.size:>10} B  {lib.machine}{flag}")


@package_app.command("aar")
@guarded
def package_aar(build_dir: Annotated[list[str], typer.Option("--build-dir", help="ABI=BUILD_DIR (holds install/lib).")],
                output: Annotated[Path, typer.Option("-o", "--output", help="The .aar to write.")],
                classes_jar: ClassesJar,
                jni_lib: JniLib = "libpytorch_jni_lite.so",
                runtime_lib: RuntimeLibs = None,
                extra_lib: Annotated[Optional[list[str]], typer.Option(help="ABI=PATH of an extra library.")] = None,
                shared_stl: SharedStl = False,
                require_16k: Annotated[bool, typer.Option(help="Fail on libraries not aligned for 16 KB pages.")] = False,
                epoch: Epoch = None) -> None:
    """Assemble an AAR from per-ABI build folders (no Gradle), checked: ABIs, ELF machines, duplicates."""
    from ..package.aar import AbiInput, build_aar

    dirs = _pairs(build_dir, "--build-dir")
    extras = _pairs(extra_lib, "--extra-lib")
    inputs = [AbiInput(abi, path, (extras[abi],) if abi in extras else ()) for abi, path in dirs.items()]
    spec = _aar_spec(tuple(dirs), jni_lib, runtime_lib, shared_stl, require_16k)
    res = build_aar(inputs, output, spec, source_date_epoch=_epoch(epoch), classes_jar=classes_jar)
    _console().print(f"wrote {res.path} (sha256 {res.sha256[:16]}…), ABIs: {', '.join(res.abis)}")
    _report_libs(res.libs)


@package_app.command("part")
@guarded
def package_part(abi: Annotated[str, typer.Option(help="The ABI this machine built.")],
                 build_dir: Annotated[Path, typer.Option(help="Its build folder (holds install/).")],
                 output: Annotated[Path, typer.Option("-o", "--output", help="Part folder to write.")],
                 jni_lib: JniLib = "libpytorch_jni_lite.so",
                 runtime_lib: RuntimeLibs = None,
                 shared_stl: SharedStl = False,
                 system_lib: Annotated[Optional[list[str]], typer.Option(help="A library the device provides, beyond Android's (repeatable; a stand-in NDK's glibc ones).")] = None) -> None:
    """Stage one ABI's libraries and headers as a self-describing part (for builds spread over machines)."""
    from dataclasses import replace

    from ..package.aar import AbiInput, stage_abi_part

    spec = replace(_aar_spec((abi,), jni_lib, runtime_lib, shared_stl, False), extra_system_libs=tuple(system_lib or ()))
    path = stage_abi_part(AbiInput(abi, build_dir), spec, output)
    _console().print(f"wrote part {path}")


@app.command()
@guarded
def assemble(parts: Annotated[list[Path], typer.Option("--parts", help="Part folders from `builder package part`.")],
             output: Annotated[Path, typer.Option("-o", "--out", help="The .aar to write; with --publication, the folder for the AAR and maven/.")],
             classes_jar: Annotated[Optional[Path], typer.Option(help="classes.jar (org.pytorch.*) to ship (not with --publication).")] = None,
             publication: Annotated[Optional[Path], typer.Option(help="Maven version folder a per-ABI `builder android` wrote: the Java side, POM and sources jar.")] = None,
             version: Annotated[Optional[str], typer.Option(help="With --publication: the version to publish (what `builder android --json` plans for all the ABIs).")] = None,
             jni_lib: JniLib = "libpytorch_jni_lite.so",
             runtime_lib: RuntimeLibs = None,
             shared_stl: SharedStl = False,
             system_lib: Annotated[Optional[list[str]], typer.Option(help="A library the device provides, beyond Android's (repeatable; a stand-in NDK's glibc ones).")] = None,
             epoch: Epoch = None) -> None:
    """One AAR from per-ABI parts built on separate machines (same bytes as building them together).

    With --publication: the AAR a one-invocation `builder android` of those ABIs writes, and its Maven folder."""
    from dataclasses import replace

    from ..errors import UsageError
    from ..package.aar import assemble_aar, read_part

    if (classes_jar is None) == (publication is None):
        raise UsageError("assemble needs --classes-jar or --publication (one of them)",
                         hint="--publication maven/org/pytorch/<artifact>/<version> of a per-ABI build")
    if publication is not None:
        from ..package.publication import assemble_release

        res, maven = assemble_release(parts, publication, output, version=version, source_date_epoch=_epoch(epoch),
                                      system_libs=tuple(system_lib or ()))
        _console().print(f"wrote {res.path} (sha256 {res.sha256[:16]}…), ABIs: {', '.join(res.abis)}; "
                         f"Maven folder {maven.version_dir}")
        _report_libs(res.libs)
        return
    abis = tuple(read_part(p).abi for p in parts)
    spec = replace(_aar_spec(abis, jni_lib, runtime_lib, shared_stl, False), extra_system_libs=tuple(system_lib or ()))
    assert classes_jar is not None
    res = assemble_aar(parts, output, spec, classes_jar=classes_jar, source_date_epoch=_epoch(epoch))
    _console().print(f"wrote {res.path} (sha256 {res.sha256[:16]}…), ABIs: {', '.join(res.abis)}")
    _report_libs(res.libs)


@package_app.command("ios")
@guarded
def package_ios_cmd(slice_: Annotated[list[str], typer.Option("--slice", help="PLATFORM:ARCH=BUILD_DIR, e.g. ios:arm64=build/OS-arm64.")],
                    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for the xcframework, zip, podspec, Package.swift.")],
                    name: Annotated[str, typer.Option(help="Framework name.")] = "LibTorch-Lite",
                    version: Annotated[str, typer.Option(help="Version for podspec/Info.plist.")] = "1.0.0",
                    url: Annotated[Optional[str], typer.Option(help="Where the zip will be served (SwiftPM url + checksum).")] = None,
                    epoch: Epoch = None) -> None:
    """Merge static libs per slice, lipo per platform, build the framework and XCFramework (+ zip, podspec, SwiftPM)."""
    from ..errors import UsageError
    from ..package.apple import AppleSlice, FrameworkSpec, package_ios

    slices = []
    for key, path in _pairs(slice_, "--slice").items():
        if ":" not in key:
            raise UsageError(f"--slice {key}: expected PLATFORM:ARCH=DIR", hint="e.g. ios-simulator:x86_64=DIR")
        platform, arch = key.split(":", 1)
        slices.append(AppleSlice(platform, arch, path))
    res = package_ios(slices, output, FrameworkSpec(name=name, version=version), source_date_epoch=_epoch(epoch),
                      url=url)
    _console().print(f"wrote {res.xcframework}, {res.zip} (sha256 {res.sha256}), {res.podspec}, {res.package_swift}")


@package_app.command("host")
@guarded
def package_host(install: Annotated[Path, typer.Option(help="Install folder of a host build.")],
                 output: Annotated[Path, typer.Option("-o", "--output", help="The .tar.gz to write.")],
                 epoch: Epoch = None) -> None:
    """A host SDK tarball (include/, lib/, share/cmake) usable with find_package(Torch)."""
    from ..package.host_sdk import package_host_sdk

    res = package_host_sdk(install, output, source_date_epoch=_epoch(epoch))
    _console().print(f"wrote {res.path} (sha256 {res.sha256[:16]}…)")


@app.command()
@guarded
def report(manifest: Annotated[Path, typer.Argument(help="An artifact's manifest (<artifact>.manifest.json).")],
           compare_with: Annotated[Optional[Path], typer.Option("--compare", help="An older manifest: show what grew.")] = None,
           as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Size per ABI/slice/folder of an artifact; with --compare, what grew since an older build."""
    import dataclasses

    from rich.table import Table

    from ..clean import human
    from ..package.manifest import compare, load_manifest, size_report

    new = load_manifest(manifest)
    rows = size_report(new)
    deltas = compare(load_manifest(compare_with), new) if compare_with else ()
    if as_json:
        sys.stdout.write(json.dumps({"sizes": [dataclasses.asdict(r) for r in rows],
                                     "grew": [dataclasses.asdict(d) for d in deltas]}, indent=2) + "\n")
        return
    table = Table("group", "files", "size", "largest file", title=f"{new['artifact']['name']} ({new['tag']})")
    for r in rows:
        table.add_row(r.group, str(r.files), human(r.bytes), f"{r.largest} ({human(r.largest_bytes)})")
    _console().print(table)
    if compare_with:
        grew = Table(*[f.name for f in dataclasses.fields(deltas[0])] if deltas else ["nothing grew"],
                     title=f"grew since {compare_with.name}")
        for d in deltas:
            grew.add_row(*[str(getattr(d, f.name)) for f in dataclasses.fields(d)])
        _console().print(grew)


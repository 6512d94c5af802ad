"""Packaging: artifacts users can ship (AAR + Maven layout, xcframework + podspec/SwiftPM,
host SDK tarball), each with a manifest.json. Every writer is reproducible and all-or-nothing.

Modules: archive (reproducible zip/tar.gz, atomic outputs), aar, java (classes.jar), elf, maven,
apple, macho, host_sdk, manifest.
"""

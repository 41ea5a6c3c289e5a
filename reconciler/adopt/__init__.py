"""Adopting an existing instance: live state as new manifests (export), into
existing ones (update), or as an emulator snapshot (snapshot)."""

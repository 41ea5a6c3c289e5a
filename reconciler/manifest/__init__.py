"""Manifest loading: YAML with positions, strict models, merged desired state."""

from reconciler.manifest.errors import ManifestError, ManifestInvalid
from reconciler.manifest.loader import GroupSelector, Manifest, load_manifest
from reconciler.manifest.models import json_schema

__all__ = [
    "GroupSelector",
    "Manifest",
    "ManifestError",
    "ManifestInvalid",
    "json_schema",
    "load_manifest",
]

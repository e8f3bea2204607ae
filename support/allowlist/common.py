"""Shared types for the harvest cases."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    """One file written by a real library: what it is, where it is, and how to open it."""

    label: str  # "<library version>: <what kind of file>", becomes an allow entry's `source`
    path: str
    kind: str  # pickle | joblib | torch-zip | torch-legacy | npy | npz | skops

"""The on-disk index: building (resumable, atomic), opening (validated), fusion."""
from .builder import BuildConfig, BuildEvent, BuildCancelled, build_index
from .fusion import FusionSpec, augmented_matrix, language_aggregate
from .store import Index, open_index

__all__ = [
    "BuildConfig",
    "BuildEvent",
    "BuildCancelled",
    "build_index",
    "FusionSpec",
    "augmented_matrix",
    "language_aggregate",
    "Index",
    "open_index",
]

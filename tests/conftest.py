import warnings

import pytest

warnings.filterwarnings("ignore", message=".*Failed to find system libvulkan.*")


@pytest.fixture(scope="session", autouse=True)
def _library_built():
    """Build the object library once (cached on disk; a no-op when the cache is warm)."""
    from assets.objects import build_library

    build_library(workers=2, progress=False)


@pytest.fixture(autouse=True)
def _library_restored():
    """Objects a test registers (user meshes) leave the library with it: later tests see only the shipped objects, as
    a fresh process would."""
    from assets import objects

    before = dict(objects.OBJECTS)
    yield
    for oid in set(objects.OBJECTS) - set(before):
        objects.OBJECTS.pop(oid)
        objects._loaded.pop(oid, None)

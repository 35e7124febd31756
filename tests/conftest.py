import warnings

import pytest

warnings.filterwarnings("ignore", message=".*Failed to find system libvulkan.*")


@pytest.fixture(scope="session", autouse=True)
def _library_built():
    """Build the object library once (cached on disk; a no-op when the cache is warm)."""
    from assets.objects import build_library

    build_library(workers=2, progress=False)

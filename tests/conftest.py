import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tiny_models, multirank helpers


def pytest_collection_modifyitems(items):
    """A test that takes a ``launched`` fixture (the convention for one launch of the ranks shared by a module) starts
    processes: it is ``multirank`` like the tests marked by hand, so that ``-m "not multirank"`` skips the launch."""
    for item in items:
        if "launched" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.multirank)


@pytest.fixture(scope="session")
def launched_forward_plans(tmp_path_factory):
    """The one launch shared by tests/test_sequence_parallel.py and tests/test_compiled.py."""
    import test_sequence_parallel

    return test_sequence_parallel.launch(tmp_path_factory)

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Single-threaded torch: the tests share a small machine and stay deterministic."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

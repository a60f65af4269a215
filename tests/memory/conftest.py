import pytest
from memhelpers import make_memory


@pytest.fixture(params=["gbm", "buffer", "buffer-herding"])
def kind(request):
    return request.param


@pytest.fixture
def new_memory(kind):
    def make(n_bits=70):
        if kind == "buffer-herding":
            return make_memory("buffer", n_bits, selection="herding")
        return make_memory(kind, n_bits)

    return make

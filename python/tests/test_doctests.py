"""The examples in the package's docstrings run and print what they say."""
import doctest

import pytest

import netloom.channel
import netloom.codec
import netloom.fault
import netloom.probe
import netloom.proxy


@pytest.mark.parametrize("module", [netloom.channel, netloom.codec, netloom.fault, netloom.probe, netloom.proxy], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{module.__name__} has no examples"
    assert result.failed == 0

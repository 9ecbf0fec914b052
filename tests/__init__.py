"""Rimay's test suite."""

import pytest

# Helper modules full of asserts get pytest's detailed failure messages too; this must run before any
# test module or conftest imports them, and the package is imported first.
pytest.register_assert_rewrite("tests.floip_spec", "tests.server", "tests.outbound", "tests.browser")

"""Guarded imports of the optional extras: the error names the extra to install."""

from __future__ import annotations

import sys

import pytest

from bayesopt.integrations import MissingExtraError, require


def test_require_returns_the_module():
    import json

    assert require("json", "none", "a test") is json


def test_require_names_the_extra_and_the_purpose(monkeypatch):
    monkeypatch.setitem(sys.modules, "some_backend", None)
    with pytest.raises(MissingExtraError) as info:
        require("some_backend", "fancy", "bayesopt.integrations.fancy")
    message = str(info.value)
    assert "bayesopt.integrations.fancy needs 'some_backend'" in message
    assert 'pip install "bayesopt[fancy]"' in message
    assert isinstance(info.value, ImportError) and info.value.name == "some_backend"


def test_a_postgres_url_without_a_driver_names_the_extra(monkeypatch):
    from bayesopt.storage import SQLStorage

    monkeypatch.setitem(sys.modules, "psycopg", None)
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    with pytest.raises(ImportError, match=r"bayesopt\[postgres\]"):
        SQLStorage("postgresql://user@db-host/studies")

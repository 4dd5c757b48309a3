"""Fixtures of the differential tests: one redis-server and one clone node per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.differential.harness import CloneServer, Differ, RedisServer


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    try:
        server = RedisServer()
    except FileNotFoundError:
        pytest.skip("redis-server is not installed")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def clone_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloneServer]:
    server = CloneServer(Path(tmp_path_factory.mktemp("differential")))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def differ(redis_server: RedisServer, clone_server: CloneServer) -> Iterator[Differ]:
    """A connection to each server, both keyspaces emptied."""
    d = Differ(redis_server.port, clone_server.port)
    try:
        d.reset()
        yield d
    finally:
        d.close()


@pytest.fixture
def differ3(redis_server: RedisServer, clone_server: CloneServer) -> Iterator[Differ]:
    """As ``differ``, over RESP3 connections (``HELLO 3``)."""
    d = Differ(redis_server.port, clone_server.port, resp3=True)
    try:
        d.reset()
        yield d
    finally:
        d.close()


@pytest.fixture(scope="module")
def shared3(redis_server: RedisServer, clone_server: CloneServer) -> Differ:
    """One module's RESP3 connections (``HELLO 3``), kept across its Hypothesis examples."""
    return Differ(redis_server.port, clone_server.port, resp3=True)

"""A log entry's batch: the C packer writes exactly the bytes msgpack writes.

Entries written by either encoder must read the same on every node (a node
built without a C compiler replicates with one built with it), so the fast
path is compared byte for byte with msgpack on random batches, across every
size boundary of msgpack's integer, array and bin forms.
"""

from __future__ import annotations

import os

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redraft import proposals
from redraft.proposals import decode_batch, encode_batch

pytestmark = pytest.mark.timeout(120)

cbatch = pytest.importorskip("redraft._cbatch")

_reference = msgpack.Packer(use_bin_type=True).pack

# Lengths on both sides of each of msgpack's size forms.
_EDGES = [0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536]
_STAMP_EDGES = [
    0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1,
    1_700_000_000_000_000_000,
]  # fmt: skip

args = st.one_of(
    st.binary(max_size=40),
    st.sampled_from(_EDGES).map(lambda n: b"v" * n),
)
commands = st.lists(args, min_size=0, max_size=18)
batches = st.lists(commands, min_size=0, max_size=40)
stamps = st.one_of(st.sampled_from(_STAMP_EDGES), st.integers(0, 2**63 - 1))


@settings(max_examples=400, deadline=None)
@given(stamps, batches)
def test_the_fast_packer_writes_msgpacks_bytes(stamp: int, cmds: list[list[bytes]]) -> None:
    assert cbatch.pack_batch(stamp, cmds) == _reference((stamp, cmds))
    assert decode_batch(encode_batch(stamp, cmds)) == (stamp, cmds)


@pytest.mark.parametrize("n", [15, 16, 65535, 65536])
def test_array_size_forms(n: int) -> None:
    many = [[b"SET", b"k", b"v"]] * n
    assert cbatch.pack_batch(5, many) == _reference((5, many))
    assert cbatch.pack_batch(5, [[b"x"] * n]) == _reference((5, [[b"x"] * n]))


def test_large_values_take_the_bin32_form() -> None:
    big = [[b"SET", b"k", b"v" * 70_000]]
    assert cbatch.pack_batch(7, big) == _reference((7, big))


@pytest.mark.parametrize(
    ("stamp", "cmds"),
    [
        (-1, [[b"SET", b"k", b"v"]]),  # msgpack's signed forms
        (2**64, [[b"SET"]]),  # msgpack refuses it, as encode_batch then does
        (1, [(b"SET", b"k")]),  # a tuple, not a list
        (1, [[b"SET", bytearray(b"k")]]),
        (1, [[b"SET", "k"]]),
        (1, ((b"SET",),)),
    ],
)
def test_anything_else_is_left_to_msgpack(stamp: int, cmds: list[list[bytes]]) -> None:
    assert cbatch.pack_batch(stamp, cmds) is None


def test_encode_batch_falls_back_to_msgpack_for_other_shapes() -> None:
    cmds = [[b"SET", bytearray(b"k"), b"v"]]
    assert encode_batch(-5, cmds) == _reference((-5, cmds))
    assert decode_batch(encode_batch(-5, cmds)) == (-5, [[b"SET", b"k", b"v"]])


@pytest.mark.skipif(bool(os.environ.get("REDRAFT_PURE_PYTHON")), reason="C paths switched off")
def test_the_node_uses_the_fast_packer_where_built() -> None:
    assert proposals._pack_batch is cbatch.pack_batch

"""Network addresses as redraft writes them: ``host:port``, ``:port`` meaning 127.0.0.1."""

from __future__ import annotations

LOCALHOST = "127.0.0.1"


def split_hostport(addr: str) -> tuple[str, int]:
    """``"host:port"`` as (host, port); ``":port"`` means 127.0.0.1, ``[v6]:port`` is allowed.

    Raises ValueError when there is no port.
    """
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"invalid address {addr!r}: expected host:port")
    host = host.strip("[]") or LOCALHOST
    return host, int(port)


def normalize(addr: str) -> str:
    """``addr`` with the host filled in: ``":7481"`` becomes ``"127.0.0.1:7481"``."""
    return f"{LOCALHOST}{addr}" if addr.startswith(":") else addr


def peer_address(text: str) -> str:
    """A member's address as given to a command or flag, checked and normalized.

    Raises ValueError with the text a client sees.
    """
    try:
        _host, port = split_hostport(text)
    except ValueError:
        raise ValueError(f"invalid peer address '{text}': expected host:port") from None
    if not 0 < port < 65536:
        raise ValueError(f"invalid peer address '{text}': bad port")
    return normalize(text)


def join_addresses(join: str) -> list[str]:
    """The addresses in a ``--join`` value: ``host:port`` items, comma-separated, once each.

    ``:port`` means 127.0.0.1; a malformed item raises ValueError.
    """
    addrs: list[str] = []
    for item in join.split(","):
        item = item.strip()
        if not item:
            continue
        _host, port = split_hostport(item)
        if not 0 < port < 65536:
            raise ValueError(f"invalid join address {item!r}: bad port")
        addr = normalize(item)
        if addr not in addrs:
            addrs.append(addr)
    if join.strip() and not addrs:
        raise ValueError(f"invalid join address {join!r}: expected host:port[,host:port...]")
    return addrs


def listen_address(addr: str, advertise: str = "") -> tuple[str, int, str]:
    """Where a node binds and what it calls itself: (bind host, port, advertised id).

    ``addr`` is ``host:port``, ``:port`` or a bare port (127.0.0.1).  The
    advertised address is ``advertise`` when given, else the bind address,
    with 127.0.0.1 standing in for a wildcard host.
    """
    bind_host, port = split_hostport(addr if ":" in addr else f":{addr}")
    if addr.startswith(":"):
        bind_host = LOCALHOST
    if advertise:
        return bind_host, port, normalize(advertise)
    host = LOCALHOST if bind_host in ("0.0.0.0", "::", "*") else bind_host
    return bind_host, port, f"{host}:{port}"

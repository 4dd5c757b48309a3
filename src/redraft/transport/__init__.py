"""Peer-to-peer traffic: the message codec and the outgoing peer links."""

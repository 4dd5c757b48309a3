"""``python -m redraft.examples.clone``: serve a clone node (see :func:`redraft.examples.clone.main`)."""

from redraft.examples.clone import main

main()

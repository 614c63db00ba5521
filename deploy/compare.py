"""The one comparator of a device's state with the reference's: which tensor differs first,
where, and by how much. verify-c (deploy/bitexact.py) and the HIL (deploy/hil.py) both name
a difference with it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Difference:
    tensor: str  # the first differing tensor in table order ("" when the tables differ)
    position: int  # its index in the table
    index: int  # its first differing element, flat (-1 when the tables differ)
    element: tuple  # the same, unravelled to the reference's shape
    device: int
    reference: int
    count: int  # elements of that tensor that differ
    size: int  # its elements
    differing: tuple  # every differing tensor, in table order
    table: str = ""  # how the tables differ (names, types or sizes), if they do

    def __str__(self) -> str:
        if self.table:
            return self.table
        also = f"; differing tensors: {', '.join(self.differing)}" if len(self.differing) > 1 else ""
        return (
            f"first differing tensor: {self.tensor} (#{self.position}), {self.count} of {self.size} elements "
            "differ, first at "
            f"{list(self.element)}: device {self.device}, reference {self.reference}{also}"
        )


def first_difference(device, reference) -> Difference | None:
    """The first difference between two lists of (name, array) in table order, or None.
    Arrays are compared flat, element by element; ``reference``'s shapes name the element."""
    mine = [(n, np.asarray(a).ravel()) for n, a in device]
    theirs = [(n, np.asarray(a)) for n, a in reference]
    if [(n, a.dtype.itemsize, a.size) for n, a in mine] != [(n, a.dtype.itemsize, a.size) for n, a in theirs]:
        return Difference(
            "",
            -1,
            -1,
            (),
            0,
            0,
            0,
            0,
            (),
            f"the device's tensor table {_table(mine)} differs from the reference's {_table(theirs)}",
        )
    first, names = None, []
    for pos, ((name, d), (_n, r)) in enumerate(zip(mine, theirs)):
        bad = np.flatnonzero(d.astype(np.int64) != r.ravel().astype(np.int64))
        if bad.size:
            names.append(name)
            if first is None:
                i = int(bad[0])
                at = tuple(int(v) for v in np.unravel_index(i, r.shape)) if r.ndim > 1 else (i,)
                first = (name, pos, i, at, int(d[i]), int(r.ravel()[i]), int(bad.size), int(r.size))
    return None if first is None else Difference(*first, tuple(names))


def _table(tensors) -> list[str]:
    return [f"{n}:{a.dtype.str}x{a.size}" for n, a in tensors]

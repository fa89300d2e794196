"""What the interpreter does where a value has no exact undecimated form.

One interpreter serves three evaluations; they differ only in this policy object
(rules never look at it):

* :class:`Undecimate` (`sigcnn.undecimate`): values are undecimated wherever the
  à trous network is defined; a construct without an undecimated form is refused
  with :class:`Refusal` (a ``NotImplementedError``) naming it and the source line.
* :class:`AllShifts` (`sigcnn.all_shifts`): values stay undecimated only while they
  are exactly shift-equivariant (periodic grids); at the first operation where that
  ends (zero padding, a flip added to an unflipped map, upsampling, data-dependent
  sampling), the operands are split into the strided values for every requested
  shift and the rest of the network runs on that batch, so the result is exact.
* :class:`Probe`: an abstract evaluation that only follows the sampling lattices,
  to find a network's total stride; it never refuses.
"""

from __future__ import annotations

import numpy as np

__all__ = ["AllShifts", "Consume", "NoForm", "NoRule", "Policy", "Probe",
           "Refusal", "RuleError", "Undecimate"]

BRUTE_HINT = 'all_shifts(f, x) evaluates it exactly'


class Refusal(NotImplementedError, ValueError):
    """f (or one of its operations) has no undecimated form."""


class RuleError(RuntimeError):
    """A rule failed unexpectedly (a defect in sigcnn or in a registered rule).

    Raised from the original exception, with the primitive and the user's source
    line, instead of an error from deep inside JAX.
    """


class NoForm(Exception):
    """A rule's result has no exact undecimated form.

    Attributes:
        reason: what the construct is and why.
        lattice: optional list of output values that carry the right lattices but
            not exact values (used only by :class:`Probe` to follow strides).
    """

    def __init__(self, reason: str, *, lattice=None):
        super().__init__(reason)
        self.reason = reason
        self.lattice = lattice


class Consume(Exception):
    """The operation consumes the spatial axes (flatten, global pooling, a dense
    layer over them): the interpreter continues on the strided value per shift.

    Attributes:
        circular: the consumer is order-free (a sum, max, ...), so shift classes of
            a non-periodic value whose support the grid tiles may be read circularly.
    """

    def __init__(self, *, circular: bool = False):
        super().__init__("consumes the spatial axes")
        self.circular = circular


class NoRule(Exception):
    """No rule for this primitive on the spatial axes it touches."""

    def __init__(self, detail: str = ""):
        super().__init__(detail)
        self.detail = detail


class Policy:
    """Base policy.

    Attributes:
        shifts: [P, 2] int array; the shifts (ty, tx) that explicit phased values
            enumerate.
        periodic_only: whether undecimated values must stay exactly
            shift-equivariant (else the operation runs phase by phase).
        record: whether to record decimation points.
    """

    shifts = np.zeros((1, 2), np.int64)
    periodic_only = False
    record = False
    refuses = True
    follows_lattice = False


class Undecimate(Policy):
    """`undecimate`: refuse what has no undecimated form."""

    def __init__(self, *, record: bool = False):
        self.record = record


class AllShifts(Policy):
    """`all_shifts`: stay exact by running phase by phase where needed."""

    periodic_only = True
    refuses = False

    def __init__(self, shifts: np.ndarray):
        self.shifts = np.asarray(shifts, np.int64)


class Probe(Policy):
    """Abstract pass that follows the lattices (total stride); never refuses."""

    refuses = False
    follows_lattice = True

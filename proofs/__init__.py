"""What must hold: obligations (round trip, clear-then-set, errors), the solver layer,
counterexample replay and reports, and the ``gicproof`` command line."""

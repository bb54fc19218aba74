"""What the devices and interfaces are: the value algebra, the vocabulary of access
behaviours, device tables, kernel-version semantics and sequence files.

Imports go one way: ``spec`` <- ``models`` <- ``proofs``; ``spec`` imports nothing of ours
outside itself.
"""

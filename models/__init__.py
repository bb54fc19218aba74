"""How devices behave: the value backends (concrete and symbolic), the device state, the
interpreter that runs a device spec and a sequence (save, then restore), and the guest
actions used for fuzzing."""

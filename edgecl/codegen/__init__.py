"""Code generators of the device layer program and runtime (``edgecl export-c``)."""

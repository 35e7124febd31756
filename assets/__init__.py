"""Object and environment library."""

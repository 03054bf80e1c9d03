//! Data sets: see the module files.

//! Integration tests of the keygate HTTP layer.

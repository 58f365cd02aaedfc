//! Integration tests of the keygate server.

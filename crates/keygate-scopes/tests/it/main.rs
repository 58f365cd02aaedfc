//! Integration tests of keygate-scopes: loading policy files and authorizing calls.

mod authorize;
mod load;
mod util;

//! Command-line behaviour of `keygated`.

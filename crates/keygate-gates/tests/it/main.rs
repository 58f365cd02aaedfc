//! Integration tests of keygate-gates: approval and evidence gates, rendering, and a
//! property test over random interleavings of calls.

mod approval;
mod evidence;
mod mrtr;
mod person;
mod prop;
mod render;
mod util;

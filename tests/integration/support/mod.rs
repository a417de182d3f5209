//! Shared test support beyond the test kit (`qrelay_testkit`): the delivery pipeline harness, and the function
//! binaries run as Lambda runs them.

pub mod binaries;
pub mod pipeline;

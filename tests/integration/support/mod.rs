//! Shared test support beyond the test kit (`qrelay_testkit`): the delivery pipeline harness.

pub mod pipeline;

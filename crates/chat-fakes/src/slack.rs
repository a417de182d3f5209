//! (being written: the slack fake)

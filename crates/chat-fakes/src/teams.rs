//! (being written: the teams fake)

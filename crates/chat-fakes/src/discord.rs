//! (being written: the discord fake)
